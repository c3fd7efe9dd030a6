/** The settings shipped in deploy/ are valid configs, so the examples cannot rot unnoticed. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { expandEnvRefs } from '../../src/config/env-refs.js';
import { buildConfig, readConfigFile } from '../../src/config/load.js';

interface DeploymentShape {
  spec: {
    template: {
      metadata: { annotations: Record<string, string> };
      spec: { containers: Array<{ ports: Array<{ name: string; containerPort: number }>; readinessProbe: Probe; livenessProbe: Probe }> };
    };
  };
}

interface Probe {
  httpGet: { path: string; port: string };
}

const deploy = (path: string): string => new URL(`../../deploy/${path}`, import.meta.url).pathname;

test('deploy/evmux.example.yaml is a valid config', () => {
  const config = buildConfig(readConfigFile(deploy('evmux.example.yaml')), {}, { NODE_A_API_KEY: 'key-a', PROVIDER_KEY: 'key-p' });
  assert.deepEqual(config.upstreams.map((upstream) => [upstream.name, upstream.role]), [['node-a', 'primary'], ['node-b', 'primary'], ['provider', 'fallback']]);
  assert.deepEqual(config.upstreams[0]!.headers, { 'X-Api-Key': 'key-a' });
  assert.deepEqual(config.proxy.trusted, ['10.0.0.0/8']);
  assert.equal(config.chainId, 1);
});

test('deploy/evmux.example.yaml names every setting, as deploy/README.md says', () => {
  const text = readFileSync(deploy('evmux.example.yaml'), 'utf8');
  const defaults = buildConfig({ upstreams: [{ url: 'ws://127.0.0.1:8545' }] }, {}) as unknown as Record<string, unknown>;
  const missing: string[] = [];
  const walk = (value: Record<string, unknown>, path: string): void => {
    for (const [key, item] of Object.entries(value)) {
      if (path === '' && key === 'upstreams') continue;
      // A setting is named where the file sets it or shows it in a comment (`# maxConnections: ...`).
      if (!new RegExp(`\\b${key}:`).test(text)) missing.push(`${path}${key}`);
      if (item !== null && typeof item === 'object' && !Array.isArray(item) && key !== 'timeoutMs' && key !== 'headers') walk(item as Record<string, unknown>, `${path}${key}.`);
    }
  };
  walk(defaults, '');
  assert.deepEqual(missing, []);
});

test("the Kubernetes ConfigMap's evmux.yaml is a valid config, its secret coming from the Secret", () => {
  const documents = parseAllDocuments(readFileSync(deploy('kubernetes/evmux.yaml'), 'utf8')).map((doc) => doc.toJS() as Record<string, unknown>);
  const configMap = documents.find((doc) => doc['kind'] === 'ConfigMap') as { data: Record<string, string> };
  const secret = documents.find((doc) => doc['kind'] === 'Secret') as { stringData: Record<string, string> };
  const raw = expandEnvRefs(parseAllDocuments(configMap.data['evmux.yaml']!)[0]!.toJS(), secret.stringData) as Record<string, unknown>;
  const config = buildConfig(raw, {});
  assert.equal(config.upstreams.length, 3);
  assert.deepEqual(config.upstreams[0]!.headers, { Authorization: 'Bearer replace-me' });
  // Prometheus scrapes the admin listener, which the pod exposes and the Service does not.
  const deployment = documents.find((doc) => doc['kind'] === 'Deployment') as unknown as DeploymentShape;
  const pod = deployment.spec.template;
  assert.equal(pod.metadata.annotations['prometheus.io/port'], String(config.admin.port));
  assert.deepEqual(pod.spec.containers[0]!.ports.find((port) => port.name === 'admin')?.containerPort, config.admin.port);
  // Readiness is the client port's own (it closes while clients hold every open file); liveness is
  // asked where that cannot close it, so the pod is not restarted for it.
  assert.deepEqual(pod.spec.containers[0]!.readinessProbe.httpGet, { path: '/readyz', port: 'rpc' });
  assert.deepEqual(pod.spec.containers[0]!.livenessProbe.httpGet, { path: '/healthz', port: 'admin' });
  const service = documents.find((doc) => doc['kind'] === 'Service') as unknown as { spec: { ports: Array<{ targetPort: string }> } };
  assert.deepEqual(service.spec.ports.map((port) => port.targetPort), ['rpc']);
});
