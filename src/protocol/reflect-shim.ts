/**
 * @peculiar/x509 2.x resolves its algorithm registry through tsyringe, which refuses to load
 * unless the (TC39-abandoned) Reflect metadata API exists. Nothing here uses decorator metadata
 * beyond what tsyringe reads at registration, so a small WeakMap-backed implementation of the
 * three functions it calls stands in for a polyfill package. Must be imported before
 * @peculiar/x509; it leaves an existing implementation alone.
 */
type MetadataTarget = object;

interface ReflectMetadata {
  getMetadata?: (key: unknown, target: MetadataTarget) => unknown;
  getOwnMetadata?: (key: unknown, target: MetadataTarget) => unknown;
  defineMetadata?: (key: unknown, value: unknown, target: MetadataTarget) => void;
  hasOwnMetadata?: (key: unknown, target: MetadataTarget) => boolean;
}

const reflect = Reflect as unknown as ReflectMetadata;

if (typeof reflect.getMetadata !== 'function') {
  const store = new WeakMap<MetadataTarget, Map<unknown, unknown>>();
  const own = (key: unknown, target: MetadataTarget): unknown => store.get(target)?.get(key);
  reflect.getOwnMetadata = own;
  reflect.hasOwnMetadata = (key, target) => store.get(target)?.has(key) ?? false;
  reflect.defineMetadata = (key, value, target) => {
    let entries = store.get(target);
    if (!entries) {
      entries = new Map();
      store.set(target, entries);
    }
    entries.set(key, value);
  };
  // Inherited lookups follow the prototype chain, as decorator metadata does.
  reflect.getMetadata = (key, target) => {
    for (
      let current: MetadataTarget | null = target;
      current;
      current = Object.getPrototypeOf(current)
    ) {
      const entries = store.get(current);
      if (entries?.has(key)) return entries.get(key);
    }
    return undefined;
  };
}

export {};
