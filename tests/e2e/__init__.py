"""End-to-end tests: a real Jupyter server and Debian's Chromium driven by Playwright."""
