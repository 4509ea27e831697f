import * as fs from 'node:fs';

/**
 * Dawn (the `webgpu` package's native code) prints warnings straight to file descriptor 2 while it finds an adapter
 * and opens a device ("Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced ...", "Couldn't load
 * Vulkan ..."): chatter a user did not ask for, which JS cannot intercept. For the duration of `f`, fd 2 points at
 * /dev/null and is then reopened on what it was (through /proc/self/fd on Linux, /dev/fd elsewhere): a terminal or a
 * pipe. Stderr redirected to a file keeps the chatter (a log, not a terminal: reopened, the file would lose the
 * position it shares with the shell). FACTORGEN_VERBOSE=1 (`factorgen info --verbose`) keeps the chatter. Where the
 * descriptors cannot be juggled (Windows, no /proc, stderr closed, stderr a socket as Node's spawn 'pipe' gives) `f`
 * runs unchanged. JS writes to stderr during `f`
 * are lost too, so `f` should print nothing itself.
 */
export async function withNativeStderrQuiet<T>(f: () => Promise<T>): Promise<T> {
  const dir = process.platform === 'linux' ? '/proc/self/fd' : process.platform === 'darwin' ? '/dev/fd' : null;
  if (!dir || process.env.FACTORGEN_VERBOSE === '1') return f();
  // A file (a log: `2>file`) keeps the chatter: reopening it would give fd 2 a file position of its own, and whatever
  // writes to the same file after factorgen (the shell, the next command) would overwrite factorgen's lines.
  try {
    if (fs.fstatSync(2).isFile()) return f();
  } catch {
    return f();
  }
  let saved: number;
  try {
    saved = fs.openSync(`${dir}/2`, 'a');
  } catch {
    return f();
  }
  let quiet = false;
  try {
    fs.closeSync(2);
    // The lowest free descriptor is 2, so /dev/null takes its place.
    quiet = fs.openSync('/dev/null', 'a') === 2;
  } catch {
    quiet = false;
  }
  try {
    return await f();
  } finally {
    if (quiet) fs.closeSync(2);
    const back = fs.openSync(`${dir}/${saved}`, 'a');
    fs.closeSync(saved);
    if (back !== 2) fs.closeSync(back); // cannot happen: 2 was the lowest free descriptor
  }
}
