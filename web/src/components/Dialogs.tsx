import * as AlertDialog from '@radix-ui/react-alert-dialog';
import * as Dialog from '@radix-ui/react-dialog';
import { useRef, useState, type ReactNode } from 'react';
import { ApiError } from '../api/client';
import { Button, ErrorText, Field, Input } from './ui';

/**
 * Where focus goes back to when a dialog opened without a Radix trigger (from state or the
 * URL) closes: the element that had it when the dialog opened. Radix alone would focus its
 * (absent) trigger, leaving keyboard users at the top of the page.
 */
function useReturnFocus() {
  const opener = useRef<HTMLElement | null>(null);
  return {
    onOpenAutoFocus: () => {
      // Called before focus moves into the dialog: this is still the opener.
      const active = document.activeElement;
      opener.current = active instanceof HTMLElement && active !== document.body ? active : null;
    },
    onCloseAutoFocus: (e: Event) => {
      const el = opener.current;
      opener.current = null;
      if (!el?.isConnected) return;
      e.preventDefault();
      el.focus();
    },
  };
}

/** A side sheet (dialog): focus is trapped and Escape closes it. */
export function Sheet({
  open,
  onOpenChange,
  title,
  description,
  children,
}: {
  open: boolean;
  onOpenChange: (open: boolean) => void;
  title: string;
  description?: string;
  children: ReactNode;
}) {
  const focus = useReturnFocus();
  return (
    <Dialog.Root open={open} onOpenChange={onOpenChange}>
      <Dialog.Portal>
        <Dialog.Overlay className="fixed inset-0 bg-slate-900/30" />
        <Dialog.Content
          {...focus}
          className="fixed inset-y-0 right-0 flex w-full max-w-3xl flex-col overflow-y-auto bg-white p-4 sm:p-6 shadow-xl focus:outline-none"
        >
          <div className="mb-4 flex items-start justify-between gap-4">
            <div>
              <Dialog.Title className="text-lg font-semibold">{title}</Dialog.Title>
              <Dialog.Description className={description ? 'text-sm text-slate-600' : 'sr-only'}>
                {description ?? title}
              </Dialog.Description>
            </div>
            <Dialog.Close asChild>
              <Button tone="ghost" aria-label="Close">
                ✕
              </Button>
            </Dialog.Close>
          </div>
          {children}
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  );
}

/** A centred dialog holding a form. */
export function FormDialog({
  open,
  onOpenChange,
  title,
  wide,
  children,
}: {
  open: boolean;
  onOpenChange: (open: boolean) => void;
  title: string;
  /** Room for a table (e.g. a role's permission grid). */
  wide?: boolean;
  children: ReactNode;
}) {
  const focus = useReturnFocus();
  return (
    <Dialog.Root open={open} onOpenChange={onOpenChange}>
      <Dialog.Portal>
        <Dialog.Overlay className="fixed inset-0 bg-slate-900/30" />
        <Dialog.Content
          {...focus}
          className={`fixed top-1/2 left-1/2 max-h-[90vh] w-full ${wide ? 'max-w-3xl' : 'max-w-lg'} -translate-x-1/2 -translate-y-1/2 overflow-y-auto rounded-lg bg-white p-4 sm:p-6 shadow-xl focus:outline-none`}
        >
          <Dialog.Title className="mb-1 text-lg font-semibold">{title}</Dialog.Title>
          <Dialog.Description className="sr-only">{title}</Dialog.Description>
          {children}
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  );
}

/**
 * Confirms a destructive action; with `typeToConfirm` the user types that text first. The
 * action's error (e.g. a 409 naming the consumers) is shown inside the dialog. `tone` is the
 * opening button's: an action that is undone easily (drain) does not look like a deletion.
 */
export function ConfirmButton({
  label,
  title,
  body,
  confirmLabel = 'Delete',
  typeToConfirm,
  onConfirm,
  disabledReason,
  small = true,
  tone = 'danger',
}: {
  label: string;
  title: string;
  body: ReactNode;
  confirmLabel?: string;
  typeToConfirm?: string;
  onConfirm: () => Promise<unknown>;
  disabledReason?: string;
  small?: boolean;
  tone?: 'danger' | 'secondary';
}) {
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const field = useRef<HTMLInputElement>(null);
  // Refused as in use (409): asking again fails again until something changes elsewhere.
  const conflict = error instanceof ApiError && error.status === 409;
  const ready = !busy && !conflict && (!typeToConfirm || typed === typeToConfirm);
  const confirm = () => {
    if (!ready) return;
    setBusy(true);
    setError(null);
    onConfirm().then(
      () => {
        setBusy(false);
        setOpen(false);
      },
      (err: unknown) => {
        setBusy(false);
        setError(err);
      },
    );
  };
  return (
    <AlertDialog.Root
      open={open}
      onOpenChange={(o) => {
        setOpen(o);
        setTyped('');
        setError(null);
      }}
    >
      <AlertDialog.Trigger asChild>
        <Button small={small} tone={tone} disabledReason={disabledReason}>
          {label}
        </Button>
      </AlertDialog.Trigger>
      <AlertDialog.Portal>
        <AlertDialog.Overlay className="fixed inset-0 bg-slate-900/30" />
        <AlertDialog.Content
          // Typing the name is the first thing to do: start there, not on Cancel.
          onOpenAutoFocus={(e) => {
            if (!typeToConfirm) return;
            e.preventDefault();
            field.current?.focus();
          }}
          // Never taller than the window: the title and the buttons stay in view, what is
          // between them (a long refusal listing what uses a pool) scrolls.
          className="fixed top-1/2 left-1/2 flex max-h-[90vh] w-full max-w-md -translate-x-1/2 -translate-y-1/2 flex-col rounded-lg bg-white p-4 [overflow-wrap:anywhere] sm:p-6 shadow-xl"
        >
          <AlertDialog.Title className="text-lg font-semibold">{title}</AlertDialog.Title>
          <div className="-mx-1 min-h-0 overflow-y-auto px-1" data-testid="dialog-body">
            <AlertDialog.Description asChild>
              <div className="mt-2 text-sm text-slate-700">{body}</div>
            </AlertDialog.Description>
            {typeToConfirm && (
              <div className="mt-3">
                <Field label={`Type “${typeToConfirm}” to confirm`}>
                  {(id) => (
                    <Input
                      ref={field}
                      id={id}
                      value={typed}
                      onChange={(e) => {
                        setTyped(e.target.value);
                        setError(null);
                      }}
                      // Enter confirms once the name matches, as the button would.
                      onKeyDown={(e) => {
                        if (e.key !== 'Enter') return;
                        e.preventDefault();
                        confirm();
                      }}
                      autoComplete="off"
                    />
                  )}
                </Field>
              </div>
            )}
            <div className="mt-3">
              <ErrorText error={error} />
            </div>
          </div>
          <div className="mt-4 flex shrink-0 justify-end gap-2">
            <AlertDialog.Cancel asChild>
              <Button>Cancel</Button>
            </AlertDialog.Cancel>
            <Button
              tone={tone === 'danger' ? 'danger' : 'primary'}
              disabled={!ready}
              onClick={confirm}
            >
              {confirmLabel}
            </Button>
          </div>
        </AlertDialog.Content>
      </AlertDialog.Portal>
    </AlertDialog.Root>
  );
}
