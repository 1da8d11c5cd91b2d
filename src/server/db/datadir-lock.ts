import {
  closeSync,
  mkdirSync,
  openSync,
  statSync,
  unlinkSync,
  writeSync,
  chmodSync,
} from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

/**
 * One process at a time opens the embedded database: two PGlite instances on one directory
 * corrupt it (each believes it is PostgreSQL's only backend). The lock is a unix socket,
 * `DATA_DIR/gatepool.sock`, listened on by the holder for its whole life:
 *
 * - it dies with the process: after a SIGKILL the file remains but nobody accepts on it, and
 *   the next start sees that (connection refused) and replaces it;
 * - it is also the way in: commands that need the database while the server runs (create-org,
 *   backup) ask the holder over it instead of opening the files themselves;
 * - it works across containers sharing the volume (same kernel), where pids mean nothing.
 *
 * The socket is 0600 in the 0700 data directory: only the platform's user (and root) connects.
 */
export const SOCKET_NAME = 'gatepool.sock';
const TAKEOVER_NAME = 'gatepool.sock.takeover';
const PROBE_TIMEOUT_MS = 2_000;
// Linux limits socket paths to 107 bytes.
const MAX_SOCKET_PATH = 107;

export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holderPid: number | undefined,
  ) {
    super(
      `the data directory ${dataDir} is in use by another gatepool process` +
        `${holderPid ? ` (pid ${holderPid})` : ''}: stop it first, or use the commands that ` +
        `work while it runs (gatepool admin create-org, gatepool backup).`,
    );
  }
}

/**
 * The socket exists but this user may not connect to it (left by a gatepool that ran as another
 * user, typically root): whether its holder still lives cannot be told, so nothing is opened.
 */
export class DataDirLockUncheckableError extends Error {
  constructor(
    readonly dataDir: string,
    readonly socketPath: string,
  ) {
    super(
      `the lock socket ${socketPath} could not be checked (permission denied${ownerNote(socketPath)}): ` +
        `if no gatepool is running on ${dataDir}, remove ${socketPath}; otherwise stop that ` +
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
      await new Promise((r) => setTimeout(r, 100));
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
 * Sockets this process listens on. A command that ends with process.exit() while holding one
 * (an error path that never reached release()) would leave the file behind: harmless to the
 * next opener, which sees nobody answering, but it looks like a running server to a person.
 * The process is gone a moment later, so removing it then is no different from a crash.
 */
const held = new Set<string>();
let exitHookInstalled = false;

function heldUntilExit(socketPath: string): void {
  held.add(socketPath);
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
  });
}

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
