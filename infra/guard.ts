// Imported first by the package's `lifeboat/sst`: the component is made of the SST app's globals ($util, sst, aws),
// which exist inside run() only.
if (typeof $util === "undefined" || typeof sst === "undefined" || typeof aws === "undefined") {
  throw new Error('lifeboat/sst is made of SST\'s platform: import it inside run() of sst.config.ts, as SST components are: const { Backups } = await import("lifeboat/sst")');
}
export {};
