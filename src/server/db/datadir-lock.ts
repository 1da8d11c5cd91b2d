import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
  chmodSync,
} from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

/**
 * One process at a time opens the embedded database: two PGlite instances on one directory
 * corrupt it (each believes it is PostgreSQL's only backend). The holder holds two locks for
 * its whole life, and a second opener must get past both:
 *
 * - a lock file, `DATA_DIR/gatepool.lock`, created with O_EXCL and holding the holder's pid,
 *   its start time (/proc/PID/stat) and the boot id. It survives a person deleting the socket
 *   (which alone let a second server open the same files). It is stale when that pid is gone,
 *   a zombie, or now another process (a different start time), or after a reboot: then it is
 *   replaced, so a SIGKILLed holder never blocks the next start;
 * - a unix socket, `DATA_DIR/gatepool.sock`, listened on by the holder. It dies with the
 *   process (after a SIGKILL nobody accepts on it, and the next start replaces it), and it works
 *   across containers sharing the volume (same kernel), where pids mean nothing. It is also
 *   the way in: commands that need the database while the server runs (create-org, backup) ask
 *   the holder over it instead of opening the files themselves.
 *
 * Both are 0600 in the 0700 data directory: only the platform's user (and root) reads them.
 */
export const SOCKET_NAME = 'gatepool.sock';
export const LOCK_FILE_NAME = 'gatepool.lock';
export const TAKEOVER_NAME = 'gatepool.sock.takeover';
const PROBE_TIMEOUT_MS = 2_000;
// Linux limits socket paths to 107 bytes.
const MAX_SOCKET_PATH = 107;

export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holderPid: number | undefined,
    /** The holder lives (its lock file says so) but its socket is gone: nothing can reach it. */
    readonly socketGone = false,
  ) {
    super(
      `the data directory ${dataDir} is in use by another gatepool process` +
        `${holderPid ? ` (pid ${holderPid})` : ''}` +
        (socketGone
          ? `, whose lock socket ${join(dataDir, SOCKET_NAME)} was removed, so commands cannot ` +
            `reach it: stop it first (restarted, it makes the socket again).`
          : `: stop it first, or use the commands that work while it runs (gatepool admin ` +
            `create-org, gatepool backup).`),
    );
  }
}

/**
 * The socket exists but this user may not connect to it, or the lock file exists but this user
 * may not read it (left by a gatepool that ran as another user, typically root): whether its
 * holder still lives cannot be told, so nothing is opened.
 */
export class DataDirLockUncheckableError extends Error {
  constructor(
    readonly dataDir: string,
    /** The lock socket or lock file. */
    readonly lockPath: string,
    what: 'socket' | 'file' = 'socket',
  ) {
    super(
      `the lock ${what} ${lockPath} could not be checked (permission denied${ownerNote(lockPath)}): ` +
        `if no gatepool is running on ${dataDir}, remove ${lockPath}; otherwise stop that ` +
        `process first, or run this command as the user it runs as.`,
    );
  }
}

function ownerNote(path: string): string {
  try {
    const { uid } = statSync(path);
    const me = process.getuid?.();
    return me === undefined || uid === me ? '' : `: it belongs to uid ${uid}, this is uid ${me}`;
  } catch {
    return '';
  }
}

/** A request to the holder: one JSON line. The answer: one JSON line, then `bytes` raw bytes. */
export interface LocalRequest {
  op: string;
  [key: string]: unknown;
}
export interface LocalAnswer {
  body: { ok: boolean; error?: string; [key: string]: unknown };
  data?: Buffer;
}
export type LocalHandler = (req: LocalRequest) => Promise<LocalAnswer>;

export interface DataDirLock {
  dataDir: string;
  socketPath: string;
  /** From now on, requests other than `hello` go to handler (until then: "still starting"). */
  serve(handler: LocalHandler): void;
  release(): Promise<void>;
}

/** Takes the lock of dataDir (created 0700 if missing) or throws DataDirInUseError. */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const socketPath = join(dataDir, SOCKET_NAME);
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
    throw new Error(
      `the data directory path ${dataDir} is too long for its lock socket (at most ` +
        `${MAX_SOCKET_PATH - SOCKET_NAME.length - 1} bytes): choose a shorter GATEPOOL_DATA_DIR`,
    );
  }
  const lockFile = await takeLockFile(dataDir, socketPath);
  try {
    return await takeSocket(dataDir, socketPath, lockFile);
  } catch (err) {
    lockFile.release();
    throw err;
  }
}

async function takeSocket(
  dataDir: string,
  socketPath: string,
  lockFile: { release(): void },
): Promise<DataDirLock> {
  let handler: LocalHandler | undefined;
  const server = createServer((socket) => serveConnection(socket, () => handler, dataDir));
  /** The lock, or undefined when the socket file exists (held, or left by a dead holder). */
  const tryListen = async (): Promise<DataDirLock | undefined> => {
    try {
      await listen(server, socketPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') return undefined;
      throw err;
    }
    chmodSync(socketPath, 0o600);
    heldUntilExit(socketPath);
    return {
      dataDir,
      socketPath,
      serve: (h) => void (handler = h),
      release: async () => {
        await closeServer(server, socketPath);
        held.delete(socketPath);
        lockFile.release();
      },
    };
  };
  for (let attempt = 0; attempt < 20; attempt++) {
    const lock = await tryListen();
    if (lock) return lock;
    const holder = await probe(socketPath);
    if (holder.denied) throw new DataDirLockUncheckableError(dataDir, socketPath);
    if (holder.alive) throw new DataDirInUseError(dataDir, holder.pid);
    // A stale socket left by a killed process. Replace it under a short-lived O_EXCL mutex,
    // so two processes starting together do not both replace it (the second then finds the
    // first alive on its re-probe; one that binds meanwhile makes ours fail and re-probe).
    if (!takeTakeover(dataDir)) {
      await sleep(100);
      continue;
    }
    try {
      const again = await probe(socketPath);
      if (again.denied) throw new DataDirLockUncheckableError(dataDir, socketPath);
      if (again.alive) throw new DataDirInUseError(dataDir, again.pid);
      unlinkQuietly(socketPath);
      const taken = await tryListen();
      if (taken) return taken;
    } finally {
      unlinkQuietly(join(dataDir, TAKEOVER_NAME));
    }
  }
  throw new Error(`could not take the lock of ${dataDir}: another process keeps replacing it`);
}

/**
 * Sockets and lock files this process holds. A command that ends with process.exit() while
 * holding one (an error path that never reached release()) would leave the file behind:
 * harmless to the next opener, which sees nobody answering, but it looks like a running server
 * to a person. The process is gone a moment later, so removing it then is no different from a
 * crash.
 */
const held = new Set<string>();
const heldLockFiles = new Map<string, string>();
let exitHookInstalled = false;

function heldUntilExit(socketPath: string): void {
  held.add(socketPath);
  installExitHook();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const path of held) {
      try {
        unlinkSync(path);
      } catch {
        // already gone; nothing else can be done while exiting
      }
    }
    for (const [path, content] of heldLockFiles) removeIfOurs(path, content);
  });
}

// --- the lock file -----------------------------------------------------------------------------

/** Who holds a lock file: enough to tell that very process from one that reused its pid. */
interface LockOwner {
  pid: number;
  /** Field 22 of /proc/PID/stat (clock ticks since boot); null where there is no /proc. */
  start: string | null;
  /** /proc/sys/kernel/random/boot_id: start times only compare within one boot. */
  boot: string | null;
}

function readProc(path: string): string | null | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    return null;
  }
}

const hasProc = (): boolean => readProc('/proc/self/stat') != null;

/**
 * A process's start time and state from /proc/PID/stat: undefined when there is no such
 * process, null when it cannot be read (e.g. /proc mounted with hidepid). The command name
 * (field 2) may hold spaces and parentheses, so fields are counted from its closing
 * parenthesis: state is field 3, start time field 22.
 */
function procStat(pid: number): { state: string; start: string } | null | undefined {
  const stat = readProc(`/proc/${pid}/stat`);
  if (stat == null) return stat;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [state, start] = [fields[0], fields[19]];
  return state && start ? { state, start } : null;
}

function bootId(): string | null {
  return readProc('/proc/sys/kernel/random/boot_id')?.trim() || null;
}

function ownerOfThisProcess(): LockOwner {
  return { pid: process.pid, start: procStat(process.pid)?.start ?? null, boot: bootId() };
}

/** Whether the process that wrote the lock file still runs (a pid reused since does not count). */
function ownerAlive(owner: LockOwner): boolean {
  const boot = bootId();
  if (owner.boot && boot && owner.boot !== boot) return false;
  const now = hasProc() ? procStat(owner.pid) : null;
  // No /proc (macOS, BSD) or not readable: only whether some process has that pid is known.
  if (now === null) return pidExists(owner.pid);
  // A zombie (Z) or dead (X) holder was killed and is only waiting to be reaped.
  if (!now || now.state === 'Z' || now.state === 'X') return false;
  return owner.start === null || now.start === owner.start;
}

/** Whether some process has this pid (one of another user counts). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (typeof o.pid !== 'number' || !Number.isInteger(o.pid) || o.pid <= 0) return undefined;
    return {
      pid: o.pid,
      start: typeof o.start === 'string' ? o.start : null,
      boot: typeof o.boot === 'string' ? o.boot : null,
    };
  } catch {
    return undefined;
  }
}

/** The lock file's text, or undefined when it is gone; EACCES means it cannot be checked. */
function readLockFile(path: string, dataDir: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EACCES' || code === 'EPERM')
      throw new DataDirLockUncheckableError(dataDir, path, 'file');
    throw err;
  }
}

function removeIfOurs(path: string, content: string): void {
  try {
    if (readFileSync(path, 'utf8') === content) unlinkSync(path);
  } catch {
    // already gone, or unreadable: not ours to remove then
  }
}

/** O_EXCL: of two processes creating it at once, exactly one succeeds. */
function createExclusive(path: string, content: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** A lock file whose writer was killed between creating and writing it is this old at most. */
const UNWRITTEN_LOCK_MS = 10_000;

/**
 * Takes DATA_DIR/gatepool.lock, replacing a stale one, or throws DataDirInUseError naming its
 * holder. A stale file is removed only under the takeover mutex and only if it still holds
 * what was judged stale, so two openers never both replace it (the second finds the first).
 */
async function takeLockFile(dataDir: string, socketPath: string): Promise<{ release(): void }> {
  const path = join(dataDir, LOCK_FILE_NAME);
  const content = `${JSON.stringify(ownerOfThisProcess())}\n`;
  for (let attempt = 0; attempt < 40; attempt++) {
    if (createExclusive(path, content)) {
      heldLockFiles.set(path, content);
      installExitHook();
      return {
        release: () => {
          if (!heldLockFiles.delete(path)) return;
          removeIfOurs(path, content);
        },
      };
    }
    const text = readLockFile(path, dataDir);
    if (text === undefined) continue; // removed meanwhile: try again at once
    const owner = parseOwner(text);
    if (owner && ownerAlive(owner)) throw await inUse(dataDir, socketPath, owner.pid);
    if (!owner && !olderThan(path, UNWRITTEN_LOCK_MS)) {
      // Being written this very moment (created, not yet filled).
      await sleep(50);
      continue;
    }
    if (!takeTakeover(dataDir)) {
      await sleep(100);
      continue;
    }
    try {
      if (readLockFile(path, dataDir) === text) unlinkQuietly(path);
    } finally {
      unlinkQuietly(join(dataDir, TAKEOVER_NAME));
    }
  }
  throw new Error(`could not take the lock of ${dataDir}: another process keeps replacing it`);
}

/**
 * The error for a lock file whose holder lives. Its socket is probed to tell a running server
 * (reachable: commands go to it) from one whose socket a person deleted (unreachable). A holder
 * that has just taken the file is listening within moments, hence the short wait.
 */
async function inUse(dataDir: string, socketPath: string, pid: number): Promise<Error> {
  for (let i = 0; i < 10; i++) {
    const holder = await probe(socketPath);
    if (holder.alive) return new DataDirInUseError(dataDir, pid);
    await sleep(100);
  }
  return new DataDirInUseError(dataDir, pid, true);
}

function olderThan(path: string, ms: number): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs > ms;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function takeTakeover(dataDir: string): boolean {
  const path = join(dataDir, TAKEOVER_NAME);
  try {
    const fd = openSync(path, 'wx', 0o600);
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // The takeover lasts milliseconds; one older than 10 s belongs to a process that died in it.
    try {
      if (Date.now() - statSync(path).mtimeMs > 10_000) unlinkQuietly(path);
    } catch {
      // gone meanwhile
    }
    return false;
  }
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(path);
  });
}

async function closeServer(server: Server, socketPath: string): Promise<void> {
  if (!server.listening) return;
  // Node removes the socket file when a listening unix server closes.
  await new Promise<void>((resolve) => server.close(() => resolve()));
  unlinkQuietly(socketPath);
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Is someone accepting on the socket, and which pid (if it says)? */
async function probe(
  socketPath: string,
): Promise<{ alive: boolean; pid?: number; denied?: boolean }> {
  try {
    const answer = await request(socketPath, { op: 'hello' }, PROBE_TIMEOUT_MS);
    return { alive: true, pid: typeof answer.body.pid === 'number' ? answer.body.pid : undefined };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Refused or missing: nobody holds it. Anything else (a holder too busy to answer in
    // time, a full backlog) counts as held: wrongly refusing is safe, wrongly opening is not.
    if (code === 'ECONNREFUSED' || code === 'ENOENT') return { alive: false };
    // Not ours to connect to: "in use" would send the operator looking for a process that
    // may not exist, so the caller says what is known (and refuses all the same).
    if (code === 'EACCES' || code === 'EPERM') return { alive: true, denied: true };
    return { alive: true };
  }
}

function serveConnection(
  socket: Socket,
  handler: () => LocalHandler | undefined,
  dataDir: string,
): void {
  socket.on('error', () => undefined);
  let buffered = '';
  const onData = (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    if (buffered.length > 1_000_000) return void socket.destroy();
    const nl = buffered.indexOf('\n');
    if (nl < 0) return;
    socket.off('data', onData);
    void answer(buffered.slice(0, nl)).then(
      ({ body, data }) => {
        socket.write(`${JSON.stringify({ ...body, bytes: data?.length ?? 0 })}\n`);
        if (data) socket.end(data);
        else socket.end();
      },
      (err: unknown) => {
        socket.end(`${JSON.stringify({ ok: false, error: (err as Error).message, bytes: 0 })}\n`);
      },
    );
  };
  socket.on('data', onData);

  async function answer(line: string): Promise<LocalAnswer> {
    let req: LocalRequest;
    try {
      req = JSON.parse(line) as LocalRequest;
    } catch {
      return { body: { ok: false, error: 'not a JSON request' } };
    }
    if (req.op === 'hello')
      return { body: { ok: true, pid: process.pid, dataDir, ready: !!handler() } };
    const h = handler();
    if (!h)
      return {
        body: { ok: false, error: `the server holding ${dataDir} is still starting; retry` },
      };
    return h(req);
  }
}

/** Sends one request to the holder of socketPath and reads its whole answer. */
export function request(
  socketPath: string,
  req: LocalRequest,
  timeoutMs: number,
): Promise<LocalAnswer> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`no answer on ${socketPath}`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    socket.on('connect', () => socket.write(`${JSON.stringify(req)}\n`));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const nl = all.indexOf(10);
      if (nl < 0) return reject(new Error(`an incomplete answer on ${socketPath}`));
      try {
        const body = JSON.parse(all.subarray(0, nl).toString('utf8')) as LocalAnswer['body'] & {
          bytes?: number;
        };
        const data = all.subarray(nl + 1);
        if ((body.bytes ?? 0) !== data.length)
          return reject(new Error(`a truncated answer on ${socketPath}`));
        resolve({ body, data });
      } catch (err) {
        reject(err as Error);
      }
    });
  });
}
