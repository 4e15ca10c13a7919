// The one selection state of the page: every live view draws from it, and the controls and pointers change
// it. Changes made within one frame are drawn once, on the next animation frame.

export class Store {
  constructor(initial) {
    this.state = {...initial};
    this.listeners = new Set();
    this.pending = null;
    this.frame = null;
  }

  set(patch) {
    const changed = Object.keys(patch).filter((name) => !same(this.state[name], patch[name]));
    if (!changed.length) return;
    Object.assign(this.state, patch);
    this.pending = new Set([...(this.pending || []), ...changed]);
    if (this.frame === null) this.frame = requestAnimationFrame(() => this.flush());
  }

  // Draw now (a test or a bench waits for the frame itself).
  flush() {
    if (this.frame !== null) cancelAnimationFrame(this.frame);
    this.frame = null;
    const changed = this.pending || new Set();
    this.pending = null;
    for (const listener of this.listeners) listener(this.state, changed);
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

function same(a, b) {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => v === b[i]);
  return false;
}

// Whether any of `names` changed.
export function touched(changed, ...names) {
  return names.some((name) => changed.has(name));
}
