/** Reads `<root>/.funcignore`; the result tells whether a root-relative posix path is ignored. */
export function readFuncignore(root: string): (relative: string, isDirectory: boolean) => boolean;
