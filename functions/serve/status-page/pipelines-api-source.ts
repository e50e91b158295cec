import {
  handlePipelinesApiRequest,
  type PipelinesApiDependencies,
} from '../../core/pipelines-api.ts';
import type { StatusPageSource } from './status-page.ts';

/** The status page of `promoter serve`: its own pipelines API, called in process. */
export const pipelinesApiSource = (deps: PipelinesApiDependencies): StatusPageSource => ({
  read: async (path) => {
    const result = await handlePipelinesApiRequest(
      { method: 'GET', path, query: '', body: new Uint8Array(0) },
      deps,
    );
    return { status: result.status, body: result.body };
  },
});
