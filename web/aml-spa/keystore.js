// "Remember on this device": the non-extractable signing key in IndexedDB. Structured clone
// keeps a CryptoKey usable but never readable, so the stored key can only sign.

const DB = "talerbox-aml";
const STORE = "officer";

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function run(mode, action) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const request = action(db.transaction(STORE, mode).objectStore(STORE));
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  } finally {
    db.close();
  }
}

/** `{key, publicKey}` remembered earlier, or undefined. */
export const recall = () => run("readonly", (store) => store.get("current"));
export const remember = (officer) =>
  run("readwrite", (store) => store.put({ key: officer.key, publicKey: officer.publicKey }, "current"));
export const forget = () => run("readwrite", (store) => store.delete("current"));
