// Flat config: typescript-eslint's type-aware rules (recommendedTypeChecked, through the project
// service and tsconfig.json) over src/test/scripts/bench, and the layer matrix of
// scripts/check-layers.ts as the `postern/layers` rule. Import cycles are checked by that script,
// which `npm run lint` runs after ESLint.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { layersRule } from './scripts/check-layers.ts';

export default tseslint.config(
  { ignores: ['node_modules/**', 'var/**', 'coverage/**', 'src/tls/wire/suites-data.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
  },
  {
    files: ['**/*.ts'],
    plugins: { postern: { rules: { layers: layersRule } } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's test()/describe()/it() return promises the runner itself awaits.
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] },
          ],
        },
      ],
      // A lower layer never imports a higher one (type imports included): see LAYERS.
      'postern/layers': 'error',
    },
  },
  {
    // Test doubles implement async interfaces with synchronous bodies on purpose: an async fake
    // that throws rejects, as the real thing does. A test that forgets an await is caught by
    // no-floating-promises, which stays on here.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/require-await': 'off' },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['bin/**/*.js', 'eslint.config.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
