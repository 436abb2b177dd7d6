/** Packages with a native binary, kept out of the bundle and shipped as installed. */
export const nativePackages: string[];

/**
 * Copies `names` and every package they depend on (as installed in `modules`, nested copies
 * included) to `dest`; resolves how many packages. Throws when a required one is not installed.
 */
export function copyPackages(modules: string, names: string[], dest: string): number;

/** Every `new URL('…', import.meta.url)` of the output must name a file or directory of the tree. */
export function checkRelativeFiles(dist: string): void;

/** Node's built-in modules that cli.cjs and the profiles' bundles require at the first read of an export. */
export const lazyBuiltins: string[];

/** The CommonJS source of the stand-in for built-in module `name` (one of {@link lazyBuiltins}). */
export function lazyBuiltinSource(name: string): string;
