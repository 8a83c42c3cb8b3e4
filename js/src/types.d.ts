declare module "highlight.js/lib/languages/*" {
  import type { LanguageFn } from "highlight.js";
  const grammar: LanguageFn;
  export default grammar;
}
