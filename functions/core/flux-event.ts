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

/**
 * Where the deployed revision is: `metadata.revision`, else `metadata["<group>/revision"]`, with
 * the field's path for messages.
 *
 * @example
 * eventRevisionField(event); // { field: 'metadata["helm.toolkit.fluxcd.io/revision"]', value: '6.5.0' }
 */
export const eventRevisionField = (
  event: FluxEvent,
): { readonly field: string; readonly value: string } | undefined => {
  const metadata = event.metadata ?? {};
  const grouped = `${apiGroup(event.involvedObject.apiVersion)}/revision`;
  const [field, value] =
    metadata.revision !== undefined
      ? ['metadata.revision', metadata.revision]
      : [`metadata[${JSON.stringify(grouped)}]`, metadata[grouped]];
  return value === undefined || value.trim() === '' ? undefined : { field, value };
};

/** The deployed revision: `metadata.revision`, else `metadata["<group>/revision"]`. */
export const eventRevision = (event: FluxEvent): string | undefined =>
  eventRevisionField(event)?.value;
