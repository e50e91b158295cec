import { parseArgs } from 'node:util';
import * as z from 'zod/mini';
import { pipelineSyncSchema } from '../core/pipeline-sync-answer.ts';
import { MAX_SYNC_BODY_BYTES } from '../core/pipelines-api.ts';
import {
  type ApiRequest,
  apiUrl,
  describeFailure,
  sendApiRequest,
  signingRegion,
} from './aws-signed-client.ts';
import { readOptionFile } from './command-line.ts';

export const SYNC_USAGE = `promoter sync -f FILE|- --api URL [--prune] [--region REGION] [--json]
  Sends Pipeline manifests (what kubectl get pipelines.pipelines.weave.works -A -o yaml|json
  prints) to PUT URL/pipelines, signed with AWS SigV4 (service execute-api, default credential
  chain), and prints what was created, updated, unchanged, deleted and invalid.
  --prune    also delete stored pipelines absent from the input (skipped when an invalid item
             names no pipeline; a pipeline that is invalid in the input keeps its stored definition).
  REGION     --region, else the region of an execute-api host name, else AWS_REGION.
  --json     print the API's answer as JSON.
  Exit status: 0 synced, 1 synced but invalid pipelines were reported, 2 failed.`;

// What --json prints: the summary without the shared-key warnings.
const syncAnswer = z.omit(pipelineSyncSchema, { warnings: true });

export type SyncAnswer = z.output<typeof syncAnswer>;

/** The summary people read: counts, then each pipeline that changed or is invalid. */
export const formatSyncSummary = (answer: SyncAnswer): string => {
  const { counts } = answer;
  const lines = [
    `pipelines: ${counts.created} created, ${counts.updated} updated, ${counts.unchanged} unchanged, ${counts.deleted} deleted, ${counts.invalid} invalid`,
  ];
  for (const id of answer.created) lines.push(`  created    ${id}`);
  for (const id of answer.updated) lines.push(`  updated    ${id}`);
  for (const id of answer.deleted) lines.push(`  deleted    ${id}`);
  for (const entry of answer.invalid) {
    lines.push(`  invalid    ${entry.id}`);
    for (const error of entry.errors) lines.push(`               - ${error}`);
  }
  if (answer.prune.requested && !answer.prune.performed) {
    lines.push(`prune skipped: ${answer.prune.reason ?? 'no reason given'}`);
  }
  for (const id of answer.prune.kept) {
    lines.push(`prune kept ${id}: it is invalid in the input, its last valid definition stays`);
  }
  return lines.join('\n');
};

const readInput = async (file: string): Promise<Buffer> => {
  if (file !== '-') return readOptionFile(file, '-f');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

/** `promoter sync`: resolves to the exit status (0 synced, 1 invalid pipelines reported). */
export const syncCommand = async (argv: string[]): Promise<number> => {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      file: { type: 'string', short: 'f' },
      api: { type: 'string' },
      prune: { type: 'boolean', default: false },
      region: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0)
    throw new Error(`unexpected argument ${JSON.stringify(positionals[0])}`);
  if (values.file === undefined)
    throw new Error('-f FILE (or -f - for standard input) is required');
  if (values.api === undefined) throw new Error('--api URL is required');
  const url = apiUrl(values.api, '/pipelines');
  if (values.prune) url.searchParams.set('prune', 'true');
  const region = signingRegion(url, values.region);

  const body = await readInput(values.file);
  const where = values.file === '-' ? 'standard input' : values.file;
  if (body.toString('utf8').trim() === '') {
    throw new Error(`${where} is empty: nothing sent (did kubectl fail?)`);
  }
  if (body.byteLength > MAX_SYNC_BODY_BYTES) {
    throw new Error(
      `${where} is over ${MAX_SYNC_BODY_BYTES} bytes: sync fewer pipelines at a time`,
    );
  }
  const json = /^\s*[[{]/.test(body.toString('utf8', 0, Math.min(body.byteLength, 1024)));
  const request: ApiRequest = {
    method: 'PUT',
    url,
    body,
    headers: { 'content-type': json ? 'application/json' : 'application/yaml' },
    region,
  };
  const response = await sendApiRequest(request);
  if (response.status !== 200) throw new Error(describeFailure(request, response));
  let answer: SyncAnswer;
  try {
    answer = syncAnswer.parse(JSON.parse(response.text));
  } catch {
    throw new Error(
      `${url.href} answered 200 with something that is not a sync summary: ${response.text.slice(0, 200)}`,
    );
  }
  process.stdout.write(
    `${values.json ? JSON.stringify(answer, null, 2) : formatSyncSummary(answer)}\n`,
  );
  return answer.counts.invalid > 0 ? 1 : 0;
};
