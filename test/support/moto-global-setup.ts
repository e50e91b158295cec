import type { TestProject } from 'vitest/node';
import { startMotoServer, useRunningMotoServer } from './moto-server.ts';

/**
 * Vitest global setup: one moto_server for the whole run, its URL provided to the tests as
 * `inject('motoEndpoint')`, stopped when the run ends.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const configured = process.env.MOTO_ENDPOINT;
  const server =
    configured === undefined || configured === ''
      ? await startMotoServer()
      : await useRunningMotoServer(configured);
  project.provide('motoEndpoint', server.endpoint);
  return () => server.stop();
}
