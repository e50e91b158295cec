/*
 * The fleet repository of the benchmarks: per app and environment four YAML files (a HelmRelease
 * with the app's `$promotion` marker, values, a Kustomization, a ConfigMap), so that `apps`
 * apps make `12 * apps` files of the shapes a Flux fleet repository holds.
 */

const ENVIRONMENTS = ['dev', 'staging', 'prod'] as const;

export const appName = (index: number): string => `app-${String(index).padStart(5, '0')}`;

/** Four YAML files per app and environment, one with the app's marker for that environment. */
export const fleetFiles = (apps: number): Record<string, string> => {
  const files: Record<string, string> = {};
  for (let index = 0; index < apps; index++) {
    const app = appName(index);
    for (const env of ENVIRONMENTS) {
      const dir = `clusters/${env}/${app}`;
      files[`${dir}/release.yaml`] = [
        'apiVersion: helm.toolkit.fluxcd.io/v2',
        'kind: HelmRelease',
        'metadata:',
        `  name: ${app}`,
        `  namespace: ${app}-${env}`,
        'spec:',
        '  interval: 5m',
        '  chart:',
        '    spec:',
        `      chart: ${app}`,
        `      version: 1.0.${index % 7} # {"$promotion": "fleet:${app}:${env}"}`,
        '      sourceRef:',
        '        kind: HelmRepository',
        '        name: charts',
        '  values:',
        `    replicaCount: ${(index % 3) + 1}`,
        '',
      ].join('\n');
      files[`${dir}/values.yaml`] = [
        `# values for ${app} in ${env}`,
        'image:',
        `  repository: registry.example.com/${app}`,
        '  pullPolicy: IfNotPresent',
        'resources:',
        '  limits:',
        `    cpu: ${100 + (index % 9) * 50}m`,
        `    memory: ${128 + (index % 5) * 64}Mi`,
        '  requests:',
        '    cpu: 50m',
        '    memory: 64Mi',
        'service:',
        '  type: ClusterIP',
        `  port: ${8000 + (index % 100)}`,
        'ingress:',
        `  enabled: ${index % 2 === 0}`,
        `  host: ${app}.${env}.example.com`,
        '',
      ].join('\n');
      files[`${dir}/kustomization.yaml`] = [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        `namespace: ${app}-${env}`,
        'resources:',
        '  - release.yaml',
        '  - configmap.yaml',
        'configMapGenerator:',
        `  - name: ${app}-values`,
        '    files:',
        '      - values.yaml',
        '',
      ].join('\n');
      files[`${dir}/configmap.yaml`] = [
        'apiVersion: v1',
        'kind: ConfigMap',
        'metadata:',
        `  name: ${app}-settings`,
        `  namespace: ${app}-${env}`,
        'data:',
        '  LOG_LEVEL: info',
        '  FEATURE_FLAGS: "a,b,c"',
        `  REGION: eu-west-${(index % 3) + 1}`,
        `  OWNER: team-${index % 17}`,
        '',
      ].join('\n');
    }
  }
  return files;
};
