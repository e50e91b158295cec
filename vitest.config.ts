import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A temporary directory for the run (removed after it), one moto_server (the AWS APIs) per
    // run, provided as inject('motoEndpoint'), and the `promoter` bundle built from the sources.
    globalSetup: [
      'test/support/temp-dir-global-setup.ts',
      'test/support/moto-global-setup.ts',
      'test/support/cli-build-global-setup.ts',
    ],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
