/**
 * Minimal Reflect metadata shim so @peculiar/x509 (via tsyringe) loads in tests without the
 * `reflect-metadata` package, which is not a dependency. tsyringe only needs get/getOwn/define.
 * Import this module before '@peculiar/x509'.
 */
type MetaStore = WeakMap<object, Map<unknown, unknown>>;
const store: MetaStore = new WeakMap();

interface ReflectWithMetadata {
  getMetadata?: (key: unknown, target: object) => unknown;
  getOwnMetadata?: (key: unknown, target: object) => unknown;
  defineMetadata?: (key: unknown, value: unknown, target: object) => void;
}

const r = Reflect as unknown as ReflectWithMetadata;
if (typeof r.getMetadata !== 'function') {
  r.getOwnMetadata = (key, target) => store.get(target)?.get(key);
  r.getMetadata = (key, target) => {
    // Walk the prototype chain like reflect-metadata's getMetadata.
    for (let t: object | null = target; t !== null; t = Object.getPrototypeOf(t) as object | null) {
      const m = store.get(t);
      if (m?.has(key) === true) return m.get(key);
    }
    return undefined;
  };
  r.defineMetadata = (key, value, target) => {
    let m = store.get(target);
    if (m === undefined) {
      m = new Map();
      store.set(target, m);
    }
    m.set(key, value);
  };
}

export {};
