import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    environment: "jsdom",
    include: ["tests/**/*.test.ts"],
    // The hostile-input tests render megabytes in jsdom: ~1-2 s on a quiet 2-core machine, 10 s and
    // more under load. They assert that rendering returns and stays inert; how long it takes is
    // measured in bench/hostile_render.mjs, not asserted here.
    testTimeout: 60_000,
  },
});
