// One slide at a time: the lecture deck (viewer/deck.py inlines this module into its HTML) and the page's Tour
// tab present their steps with it. Arrow keys, Page Up/Down and the space bar step; so do the Previous and Next
// buttons and, in the deck, a click on the slide; F goes full screen; N shows the speaker notes.

export function present(root, slides, {clickSteps = false, onShow = null, barIn = root} = {}) {
  let current = 0;
  const bar = document.createElement('div');
  bar.className = 'deck-bar';
  const previous = button('‹ Previous', 'Previous step (left arrow)');
  const counter = document.createElement('span');
  counter.className = 'deck-counter';
  counter.setAttribute('aria-live', 'polite');
  const next = button('Next ›', 'Next step (right arrow)');
  const full = button('Full screen', 'Full screen (F)');
  bar.append(previous, counter, next, full);
  barIn.prepend(bar);

  function button(text, title) {
    const element = document.createElement('button');
    element.type = 'button';
    element.textContent = text;
    element.title = title;
    element.className = 'deck-button';
    return element;
  }

  function show(index) {
    current = Math.max(0, Math.min(slides.length - 1, index));
    slides.forEach((slide, i) => { slide.hidden = i !== current; });
    counter.textContent = `${current + 1} / ${slides.length}`;
    previous.disabled = current === 0;
    next.disabled = current === slides.length - 1;
    if (onShow) onShow(current);
  }

  function toggleFullScreen() {
    if (document.fullscreenElement) document.exitFullscreen();
    else root.requestFullscreen?.();
  }

  previous.addEventListener('click', () => show(current - 1));
  next.addEventListener('click', () => show(current + 1));
  full.addEventListener('click', toggleFullScreen);
  if (clickSteps) {
    slides.forEach((slide) => slide.addEventListener('click', (event) => {
      if (!event.target.closest('a, button')) show(current + 1);
    }));
  }
  root.tabIndex = root.tabIndex >= 0 ? root.tabIndex : 0;
  const keys = (event) => {
    if (event.target.closest && event.target.closest('input, textarea, select')) return;
    if (!clickSteps && !root.contains(event.target) && document.fullscreenElement !== root) return;
    const step = {ArrowRight: 1, PageDown: 1, ' ': 1, ArrowLeft: -1, PageUp: -1}[event.key];
    if (step) {
      event.preventDefault();
      show(current + step);
    } else if (event.key === 'Home') show(0);
    else if (event.key === 'End') show(slides.length - 1);
    else if (event.key === 'f' || event.key === 'F') toggleFullScreen();
    else if (event.key === 'n' || event.key === 'N') root.classList.toggle('deck-notes-shown');
  };
  (clickSteps ? document : root).addEventListener('keydown', keys);
  show(0);
  return {show, get current() { return current; }};
}
