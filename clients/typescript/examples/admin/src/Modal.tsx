import { useEffect, useId, useRef, type ReactNode } from "react";

interface Props {
  title: string;
  /** alertdialog for a question that interrupts (a conflict, a deletion). */
  role?: "dialog" | "alertdialog";
  onClose(): void;
  children: ReactNode;
}

/** A modal <dialog>, open while it is rendered; Escape calls onClose. */
export function Modal({ title, role = "dialog", onClose, children }: Props) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  return (
    <dialog
      ref={ref}
      role={role === "alertdialog" ? "alertdialog" : undefined}
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <h2 id={titleId}>{title}</h2>
      {children}
    </dialog>
  );
}
