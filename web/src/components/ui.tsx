import * as Label from '@radix-ui/react-label';
import * as Tooltip from '@radix-ui/react-tooltip';
import { Link } from '@tanstack/react-router';
import {
  createContext,
  useContext,
  useEffect,
  useId,
  useRef,
  useState,
  useSyncExternalStore,
  type ButtonHTMLAttributes,
  type ComponentProps,
  type ReactNode,
} from 'react';
import { ApiError, isUnreachable, platformReachability } from '../api/client';
import { useWarningNotices, warningNotices } from '../lib/notices';

type Tone = 'primary' | 'secondary' | 'danger' | 'ghost';
const TONES: Record<Tone, string> = {
  primary: 'bg-indigo-700 text-white hover:bg-indigo-800 disabled:bg-indigo-300',
  secondary:
    'bg-white text-slate-800 border border-slate-300 hover:bg-slate-100 disabled:text-slate-400',
  danger: 'bg-red-700 text-white hover:bg-red-800 disabled:bg-red-300',
  ghost: 'text-slate-700 hover:bg-slate-200 disabled:text-slate-400',
};

export interface ButtonProps extends ButtonHTMLAttributes<HTMLButtonElement> {
  tone?: Tone;
  /** Why the button is disabled (shown as its tooltip and accessible description). */
  disabledReason?: string;
  small?: boolean;
}

/** Whether the enclosing Form's submit is in flight (its submit buttons are then disabled). */
const FormPending = createContext(false);

export function Button({
  tone = 'secondary',
  disabledReason,
  small,
  className,
  ...props
}: ButtonProps) {
  const pending = useContext(FormPending);
  const cls = `inline-flex items-center gap-1 rounded-md font-medium focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600 focus-visible:ring-offset-1 disabled:cursor-not-allowed ${small ? 'px-2 py-1 text-xs' : 'px-3 py-1.5 text-sm'} ${TONES[tone]} ${className ?? ''}`;
  const button = (
    <button
      type="button"
      className={cls}
      {...props}
      disabled={props.disabled || !!disabledReason || (pending && props.type === 'submit')}
      aria-busy={pending && props.type === 'submit' ? true : undefined}
      title={disabledReason ?? props.title}
    />
  );
  return button;
}

export function Field({
  label,
  hint,
  error,
  children,
}: {
  label: string;
  hint?: ReactNode;
  /** What is wrong with the value: checked as the user types, or the platform's refusal. */
  error?: string | null;
  /** The control, given its id, what describes it, and whether its value is refused. */
  children: (id: string, describedBy: string | undefined, invalid: boolean) => ReactNode;
}) {
  const id = useId();
  const hintId = `${id}-hint`;
  const errId = `${id}-err`;
  const describedBy =
    [hint ? hintId : '', error ? errId : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div className="flex min-w-0 flex-col gap-1">
      <Label.Root htmlFor={id} className="text-sm font-medium text-slate-800">
        {label}
      </Label.Root>
      {children(id, describedBy, !!error)}
      {hint && (
        <p id={hintId} className="text-xs text-slate-600">
          {hint}
        </p>
      )}
      {error && (
        <p id={errId} role="alert" className="text-xs [overflow-wrap:anywhere] text-red-700">
          {error}
        </p>
      )}
    </div>
  );
}

/** One field the platform refused: `body.name`, `querystring.from`, `body.permissions.3`. */
export interface FieldIssue {
  field: string;
  message: string;
}

/** The per-field messages of a refusal (`details.fields` of a 400), if it has any. */
export function fieldIssues(error: unknown): FieldIssue[] {
  if (!(error instanceof ApiError)) return [];
  const fields = (error.details as { fields?: unknown } | undefined)?.fields;
  if (!Array.isArray(fields)) return [];
  return fields.filter(
    (f): f is FieldIssue =>
      !!f && typeof f === 'object' && typeof f.field === 'string' && typeof f.message === 'string',
  );
}

/**
 * Splits a refusal between the form's fields and the rest. `names` are the body (or query)
 * fields the form shows (`name`, `permissions`): each gets its message next to it through `of(name)`
 * (a nested path such as `permissions.3` belongs to `permissions`). `rest` is what is left for
 * the top of the form: the error itself when it names no field, a shorter one when only some
 * fields are shown, nothing when every field is. One helper, so every form reads the same
 * answer the same way.
 */
export function splitFieldErrors(
  error: unknown,
  names: readonly string[],
): { of: (name: string) => string | undefined; rest: unknown } {
  const issues = fieldIssues(error);
  if (!issues.length) return { of: () => undefined, rest: error };
  const local = (f: string) => f.replace(/^(body|querystring|params)(\.|$)/, '');
  const owner = (f: string) =>
    names.find((n) => local(f) === n || local(f).startsWith(`${n}.`)) ?? null;
  const byName = new Map<string, string[]>();
  const unclaimed: FieldIssue[] = [];
  for (const i of issues) {
    const n = owner(i.field);
    if (n) byName.set(n, [...(byName.get(n) ?? []), i.message]);
    else unclaimed.push(i);
  }
  const err = error as ApiError;
  const rest = !unclaimed.length
    ? null
    : unclaimed.length === issues.length
      ? error
      : new ApiError(
          err.status,
          err.code,
          `Invalid request: ${unclaimed.map((f) => `${f.field}: ${f.message}`).join('; ')}`,
          { fields: unclaimed },
        );
  return { of: (name) => byName.get(name)?.join('; '), rest };
}

// ComponentProps, not the HTML attributes alone: a ref passes through (React 19).
export function Input(props: ComponentProps<'input'>) {
  return (
    <input
      {...props}
      className={`rounded-md border border-slate-400 bg-white px-2 py-1.5 text-sm focus:border-indigo-600 focus:outline-none focus:ring-1 focus:ring-indigo-600 aria-invalid:border-red-600 ${props.className ?? ''}`}
    />
  );
}

export function TextArea(props: React.TextareaHTMLAttributes<HTMLTextAreaElement>) {
  return (
    <textarea
      {...props}
      className={`rounded-md border border-slate-400 bg-white px-2 py-1.5 font-mono text-xs focus:border-indigo-600 focus:outline-none focus:ring-1 focus:ring-indigo-600 ${props.className ?? ''}`}
    />
  );
}

/** An API error in its own words, next to what caused it. */
export function ErrorText({ error }: { error: unknown }) {
  // "Could not be reached" is stale once the platform answers again: it goes by itself.
  const reachable = useSyncExternalStore(platformReachability.subscribe, platformReachability.get);
  if (!error) return null;
  if (reachable && isUnreachable(error)) return null;
  const message =
    error instanceof ApiError
      ? shortened(error)
      : error instanceof Error
        ? error.message
        : String(error);
  const code = error instanceof ApiError ? error.code : undefined;
  return (
    <div
      role="alert"
      className="rounded-md border border-red-300 bg-red-50 px-3 py-2 text-sm text-red-800"
    >
      {message}
      {code && code !== 'http_error' && (
        <span className="ml-2 font-mono text-xs text-red-700">({code})</span>
      )}
      <ErrorDetails error={error} />
    </div>
  );
}

/** How many names a refusal lists before "and N more". */
const LISTED = 8;

/**
 * A "used by …" refusal names every consumer in its sentence, and the details list them
 * again: with fifty, the sentence alone fills the screen. The sentence then says how many,
 * and the (capped) list below names them.
 */
function shortened(error: ApiError): string {
  const consumers = (error.details as { consumers?: unknown[] } | undefined)?.consumers;
  const at = error.message.indexOf(' is used by ');
  if (!Array.isArray(consumers) || consumers.length <= 1 || at < 0) return error.message;
  return `${error.message.slice(0, at)} is used by ${consumers.length} resources; detach them first:`;
}

/** At most LISTED items, then "and N more". */
function CappedList({ items }: { items: string[] }) {
  const rest = items.length - LISTED;
  return (
    <ul className="mt-1 list-disc pl-5 text-xs">
      {items.slice(0, rest > 1 ? LISTED : items.length).map((h) => (
        <li key={h}>{h}</li>
      ))}
      {rest > 1 && <li className="list-none">…and {rest} more</li>}
    </ul>
  );
}

function ErrorDetails({ error }: { error: unknown }) {
  if (!(error instanceof ApiError)) return null;
  const details = error.details as
    | { consumers?: { kind: string; name: string }[]; users?: unknown; identities?: unknown }
    | undefined;
  const strings = (v: unknown) =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  // Who still holds a role that cannot be deleted (a 409): what to reassign first.
  const holders = [
    ...strings(details?.users).map((u) => `member ${u}`),
    ...strings(details?.identities).map((i) => `identity “${i}”`),
  ];
  if (holders.length) return <CappedList items={holders} />;
  if (!details?.consumers?.length) return null;
  return <CappedList items={details.consumers.map((c) => `${c.kind} “${c.name}”`)} />;
}

export function Loading({ what }: { what: string }) {
  return (
    <div role="status" className="flex items-center gap-2 p-6 text-sm text-slate-600">
      <span className="h-3 w-3 animate-pulse rounded-full bg-indigo-400" aria-hidden />
      Loading {what}…
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="rounded-lg border border-dashed border-slate-300 bg-white p-8 text-center">
      <p className="font-medium text-slate-800">{title}</p>
      {children && <div className="mt-2 text-sm text-slate-600">{children}</div>}
    </div>
  );
}

export function Card({
  title,
  actions,
  children,
}: {
  title?: string;
  actions?: ReactNode;
  children: ReactNode;
}) {
  return (
    <section className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm">
      {(title || actions) && (
        <div className="mb-3 flex items-center justify-between gap-2">
          {title && <h2 className="text-base font-semibold">{title}</h2>}
          <div className="flex gap-2">{actions}</div>
        </div>
      )}
      {children}
    </section>
  );
}

/** Copies through the hidden-textarea route, which works outside secure contexts too. */
function copyByExecCommand(text: string): boolean {
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.top = '0';
  area.style.left = '0';
  area.style.opacity = '0';
  const active = document.activeElement as HTMLElement | null;
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  area.remove();
  active?.focus();
  return ok;
}

/**
 * Puts `text` on the clipboard: the Clipboard API where the page may use it (secure contexts),
 * else the textarea route. False when neither worked.
 */
export async function copyText(text: string): Promise<boolean> {
  const clipboard = typeof navigator !== 'undefined' ? navigator.clipboard : undefined;
  if (clipboard?.writeText) {
    try {
      await clipboard.writeText(text);
      return true;
    } catch {
      // Refused (no permission, not focused): try the other route.
    }
  }
  return copyByExecCommand(text);
}

/**
 * A copy button that never fails silently: when copying is impossible it says so and shows
 * the text selected, ready for Ctrl+C.
 */
export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  const manual = useRef<HTMLInputElement>(null);
  const timer = useRef<ReturnType<typeof setTimeout>>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);
  useEffect(() => {
    if (state === 'failed') {
      manual.current?.focus();
      manual.current?.select();
    }
  }, [state]);
  return (
    <span className="inline-flex max-w-full flex-wrap items-center gap-1">
      <Button
        small
        onClick={() => {
          clearTimeout(timer.current);
          void copyText(text).then((ok) => {
            setState(ok ? 'copied' : 'failed');
            if (ok) timer.current = setTimeout(() => setState('idle'), 1500);
          });
        }}
      >
        {state === 'copied' ? 'Copied' : label}
      </Button>
      {state === 'failed' && (
        <>
          <span role="alert" className="text-xs text-red-700">
            Copy failed: select the text and copy it.
          </span>
          <input
            ref={manual}
            readOnly
            aria-label={`Text to copy (${label})`}
            value={text}
            onFocus={(e) => e.target.select()}
            className="w-full min-w-0 rounded border border-slate-300 bg-white px-1 py-0.5 font-mono text-xs"
          />
        </>
      )}
    </span>
  );
}

/** Warnings the platform gave with a change that went through; each stays until dismissed. */
export function WarningNotices() {
  const notices = useWarningNotices();
  if (!notices.length) return null;
  return (
    <section aria-label="Warnings" className="mb-4 flex flex-col gap-2">
      {notices.map((n) => (
        <div
          key={n.id}
          role="alert"
          data-warning
          className="flex items-start justify-between gap-3 rounded-md border border-amber-300 bg-amber-50 px-3 py-2 text-sm text-amber-950"
        >
          <p className="min-w-0 [overflow-wrap:anywhere]">
            <strong>Warning:</strong> {n.text}
          </p>
          <Button small tone="ghost" onClick={() => warningNotices.dismiss(n.id)}>
            Dismiss
          </Button>
        </div>
      ))}
    </section>
  );
}

/** A table that scrolls sideways inside its box instead of widening the page. */
export function TableScroll({ children, className }: { children: ReactNode; className?: string }) {
  return <div className={`relative max-w-full overflow-x-auto ${className ?? ''}`}>{children}</div>;
}

export function Tip({ text, children }: { text: string; children: ReactNode }) {
  return (
    <Tooltip.Root>
      <Tooltip.Trigger asChild>{children}</Tooltip.Trigger>
      <Tooltip.Portal>
        <Tooltip.Content
          className="max-w-xs rounded bg-slate-900 px-2 py-1 text-xs text-white"
          sideOffset={4}
        >
          {text}
        </Tooltip.Content>
      </Tooltip.Portal>
    </Tooltip.Root>
  );
}

export function relativeTime(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.round((now - new Date(iso).getTime()) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/**
 * A form whose submit runs `onSubmit` (the page does not reload). When `onSubmit` returns a
 * promise (a `mutateAsync()`), further submits are ignored until it settles (and for
 * DOUBLE_SUBMIT_MS after it started) and the submit buttons are disabled meanwhile: a
 * double-click sends one request, not two. The guard is a
 * ref, not state, because a mutation's pending state reaches React a tick later, after the
 * second click of a double-click. A refusal is the mutation's to show (its `error`), so the
 * promise's rejection is dropped here.
 */
/** A second submit this soon after the first is the same click twice (a double-click). */
const DOUBLE_SUBMIT_MS = 500;

export function Form({
  onSubmit,
  ...props
}: Omit<ComponentProps<'form'>, 'onSubmit'> & { onSubmit: () => unknown }) {
  const inFlight = useRef(false);
  const lastSubmit = useRef(0);
  const [pending, setPending] = useState(false);
  return (
    <FormPending.Provider value={pending}>
      <form
        {...props}
        aria-busy={pending || undefined}
        onChange={(e) => {
          // An edit between two submits: the second is meant, not a double-click.
          lastSubmit.current = 0;
          props.onChange?.(e);
        }}
        onSubmit={(e) => {
          e.preventDefault();
          // A local platform can answer before a double-click's second click lands: that
          // click is dropped too, not taken as a new submit.
          const now = Date.now();
          if (inFlight.current || now - lastSubmit.current < DOUBLE_SUBMIT_MS) return;
          lastSubmit.current = now;
          const result = onSubmit();
          if (!(result instanceof Promise)) return;
          inFlight.current = true;
          setPending(true);
          void result
            .catch(() => undefined)
            .finally(() => {
              inFlight.current = false;
              setPending(false);
            });
        }}
      />
    </FormPending.Provider>
  );
}

/** A list's search box: filters what is loaded (every page of it, see allPages). */
export function SearchField({
  label,
  value,
  onChange,
}: {
  label: string;
  value: string;
  onChange: (v: string) => void;
}) {
  return (
    <Field label={label}>
      {(id) => (
        <Input
          id={id}
          type="search"
          value={value}
          autoComplete="off"
          onChange={(e) => onChange(e.target.value)}
        />
      )}
    </Field>
  );
}

/** Whether any of `fields` contains what was typed (case-insensitive, trimmed). */
export function matches(query: string, ...fields: (string | null | undefined)[]): boolean {
  const q = query.trim().toLowerCase();
  return !q || fields.some((f) => !!f && f.toLowerCase().includes(q));
}

/**
 * How many rows a list shows of how many loaded, and, when the bounded loading stopped before
 * the end (`more`), that there are more than these: never a silent cut.
 */
export function ListCount({
  shown,
  total,
  more,
  noun,
  plural = `${noun}s`,
}: {
  shown: number;
  total: number;
  more: boolean;
  /** One of the items ("pool"); `plural` when adding an s is wrong. */
  noun: string;
  plural?: string;
}) {
  const of = total === 1 ? noun : plural;
  return (
    <p role="status" className="text-xs text-slate-600">
      {shown === total ? `${total} ${of}` : `${shown} of ${total} ${of}`}
      {more &&
        ` — only the first ${total} are loaded here; the API lists the rest (GET with ?cursor=).`}
    </p>
  );
}

/** The children when `check` allows, else why not (a missing permission, named). */
export function Permitted({
  check,
  children,
}: {
  check: { allowed: boolean; reason: string };
  children: ReactNode;
}) {
  return check.allowed ? children : <p className="text-sm text-slate-600">{check.reason}</p>;
}

/** A column heading; `className` e.g. hides a low-priority column on narrower screens. */
export type Column = string | { label: string; className: string };

/** A table's header row; an empty title is an unlabelled actions column. */
export function TableHead({ columns, cell = 'px-3 py-2' }: { columns: Column[]; cell?: string }) {
  return (
    <thead className="bg-slate-50 text-xs text-slate-700 uppercase">
      <tr>
        {columns.map((c, i) => {
          const h = typeof c === 'string' ? c : c.label;
          const cls = typeof c === 'string' ? '' : c.className;
          return (
            <th key={h || i} scope="col" className={`${cell} font-semibold ${cls}`}>
              {h || <span className="sr-only">Actions</span>}
            </th>
          );
        })}
      </tr>
    </thead>
  );
}

/**
 * A page that could not load what its link names: a bad or stale link says so as a page (a
 * heading, the platform's words, the way back), not as a bare red box.
 */
export function LoadError({
  error,
  what,
  back,
}: {
  error: unknown;
  /** What the link names, e.g. "Gateway". */
  what: string;
  back: { to: '/gateways' | '/identities'; label: string };
}) {
  const status = error instanceof ApiError ? error.status : 0;
  const title =
    status === 404
      ? `${what} not found`
      : status === 400
        ? 'Not a valid link'
        : `${what} could not be loaded`;
  return (
    <div className="flex flex-col gap-3">
      <h1 className="text-2xl font-semibold">{title}</h1>
      <ErrorText error={error} />
      <p className="text-sm">
        <Link to={back.to} className="text-indigo-800 underline">
          {back.label}
        </Link>
      </p>
    </div>
  );
}

/** The page for a path no route matches. */
export function NotFoundPage() {
  return (
    <div className="flex flex-col gap-3">
      <h1 className="text-2xl font-semibold">Page not found</h1>
      <p className="text-sm">This page does not exist.</p>
      <p className="text-sm">
        <Link to="/gateways" className="text-indigo-800 underline">
          Back to the gateways
        </Link>
      </p>
    </div>
  );
}
