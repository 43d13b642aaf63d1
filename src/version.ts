import packageJson from '../package.json' with { type: 'json' };

/** This package's version, sent as `worker_version` and shown by `--version`. */
export const LANES_VERSION: string = packageJson.version;
