// Lint of the dashboard's scripts (durable_ext/dashboard/static) and their node tests.
import js from "@eslint/js";
import globals from "globals";

export default [
  js.configs.recommended,
  {
    files: ["durable_ext/dashboard/static/**/*.mjs"],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ["tests/dashboard/**/*.mjs"],
    languageOptions: { globals: globals.node },
  },
  {
    rules: {
      eqeqeq: "error",
      "no-var": "error",
      "prefer-const": "error",
      "no-implicit-globals": "error",
      "no-shadow": "error",
    },
  },
];
