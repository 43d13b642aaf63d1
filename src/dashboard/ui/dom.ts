/**
 * A few DOM helpers: `h()` builds elements, `render()` swaps a container's
 * content and gives keyboard focus back to the element that had it (matched by
 * `data-key`), so a live update never throws a keyboard user out of place.
 */

type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>;

/** `h('button', {onclick, 'aria-label': …}, 'Suspend')`. `on*` attributes become listeners; `false`/`null` attributes are left out. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (name === 'style') setStyle(element, String(value));
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

/**
 * Inline styles go through the CSSOM: the page's Content-Security-Policy
 * (`style-src 'self'`) blocks `style` attributes, not `element.style`.
 */
function setStyle(element: HTMLElement, declarations: string): void {
  for (const declaration of declarations.split(';')) {
    const colon = declaration.indexOf(':');
    if (colon > 0) element.style.setProperty(declaration.slice(0, colon).trim(), declaration.slice(colon + 1).trim());
  }
}

function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

/**
 * Replaces `container`'s children with `content`, keeping focus on the element with the same
 * `data-key`, and keeping what the user picked or typed in a keyed control that the redraw would
 * otherwise reset (a filter chosen but not yet applied when a live update arrives).
 */
export function render(container: HTMLElement, ...content: Child[]): void {
  const active = document.activeElement;
  const key = active instanceof HTMLElement && container.contains(active) ? active.dataset['key'] : undefined;
  const edited = editedValues(container);
  const fragment = document.createDocumentFragment();
  append(fragment, content);
  container.replaceChildren(fragment);
  for (const [editedKey, value] of edited) {
    const control = container.querySelector(`[data-key="${CSS.escape(editedKey)}"]`);
    if (control instanceof HTMLSelectElement || control instanceof HTMLInputElement) control.value = value;
  }
  if (key !== undefined) container.querySelector<HTMLElement>(`[data-key="${CSS.escape(key)}"]`)?.focus();
}

/** Keyed selects and inputs whose value differs from the one they were drawn with. */
function editedValues(container: HTMLElement): Map<string, string> {
  const edited = new Map<string, string>();
  for (const control of container.querySelectorAll<HTMLElement>('select[data-key], input[data-key]')) {
    const controlKey = control.dataset['key'];
    if (controlKey === undefined) continue;
    if (control instanceof HTMLSelectElement) {
      const drawn = [...control.options].find((option) => option.defaultSelected) ?? control.options[0];
      if (drawn !== undefined && control.value !== drawn.value) edited.set(controlKey, control.value);
    } else if (control instanceof HTMLInputElement && control.type !== 'password' && control.value !== control.defaultValue) {
      edited.set(controlKey, control.value);
    }
  }
  return edited;
}

/** `3 s`, `4 min 10 s`, `2 h 5 min`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A local wall-clock time with milliseconds, for timings side by side. */
export function formatTime(ms: number | null): string {
  if (ms === null) return '—';
  const date = new Date(ms);
  return `${date.toLocaleTimeString([], { hour12: false })}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

/** The first block of a UUID: enough to tell runs apart on screen. */
export function shortId(id: string): string {
  return id.split('-')[0] ?? id;
}

export function parseTime(iso: string | null): number | null {
  return iso === null ? null : Date.parse(iso);
}
