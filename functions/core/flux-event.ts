import * as z from 'zod/mini';

/** What Flux notification-controller POSTs to a `generic-hmac` Provider (DESIGN.md section 5). */
const text = z.string({ error: 'expected a string' });
const nonEmpty = z
  .string({ error: 'expected a string' })
  .check(z.minLength(1, 'expected a non-empty string'));

export const fluxEventSchema = z.object({
  involvedObject: z.object(
    {
      kind: nonEmpty,
      namespace: nonEmpty,
      name: nonEmpty,
      uid: z.optional(text),
      apiVersion: nonEmpty,
      resourceVersion: z.optional(text),
    },
    { error: 'expected the object the event is about' },
  ),
  severity: text,
  timestamp: z.iso.datetime({ offset: true, error: 'expected an RFC 3339 timestamp' }),
  message: text,
  reason: text,
  metadata: z.optional(z.record(z.string(), z.string())),
  reportingController: text,
  reportingInstance: z.optional(text),
});

export type FluxEvent = z.infer<typeof fluxEventSchema>;

/** `helm.toolkit.fluxcd.io` from `helm.toolkit.fluxcd.io/v2`; `` for the core group (`v1`). */
export const apiGroup = (apiVersion: string): string => {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
};

/** The deployed revision: `metadata.revision`, else `metadata["<group>/revision"]`. */
export const eventRevision = (event: FluxEvent): string | undefined => {
  const metadata = event.metadata ?? {};
  const revision =
    metadata.revision ?? metadata[`${apiGroup(event.involvedObject.apiVersion)}/revision`];
  return revision === undefined || revision.trim() === '' ? undefined : revision;
};
