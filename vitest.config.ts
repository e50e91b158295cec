import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One moto_server (the AWS APIs) per run, provided as inject('motoEndpoint').
    globalSetup: ['test/support/moto-global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
