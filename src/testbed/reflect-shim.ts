/**
 * @peculiar/x509 2.x loads tsyringe, which throws at import time unless a Reflect metadata
 * polyfill (the `reflect-metadata` package) is present. That package is not a dependency, so
 * this installs the three functions tsyringe calls — only when nothing else already has.
 * Import this module before `@peculiar/x509` (ESM evaluates imports in order).
 */
type MetadataTarget = object;
const store = new WeakMap<MetadataTarget, Map<unknown, unknown>>();

interface ReflectMetadataApi {
  getMetadata?: (key: unknown, target: MetadataTarget) => unknown;
  getOwnMetadata?: (key: unknown, target: MetadataTarget) => unknown;
  defineMetadata?: (key: unknown, value: unknown, target: MetadataTarget) => void;
}

const api = Reflect as unknown as ReflectMetadataApi;
if (typeof api.getMetadata !== 'function') {
  const own = (key: unknown, target: MetadataTarget): unknown => store.get(target)?.get(key);
  api.getOwnMetadata = own;
  api.getMetadata = (key, target) => {
    // Walk the prototype chain like reflect-metadata does.
    for (let t: MetadataTarget | null = target; t !== null; t = Object.getPrototypeOf(t) as MetadataTarget | null) {
      const v = own(key, t);
      if (v !== undefined) return v;
    }
    return undefined;
  };
  api.defineMetadata = (key, value, target) => {
    let m = store.get(target);
    if (m === undefined) store.set(target, (m = new Map()));
    m.set(key, value);
  };
}

export {};
