// The xterm.js colour themes, following the system's light or dark
// setting (prefers-color-scheme) as the page's CSS does.

const dark = {
  background: '#16181d',
  foreground: '#d8dee9',
  cursor: '#d8dee9',
  cursorAccent: '#16181d',
  selectionBackground: '#3b4252',
};

const light = {
  background: '#fbfbfc',
  foreground: '#1f2328',
  cursor: '#1f2328',
  cursorAccent: '#fbfbfc',
  selectionBackground: '#b6d3f2',
  // xterm's default white and bright white are invisible on a light
  // background; darken them and yellow, which is unreadable too.
  white: '#6e7781',
  brightWhite: '#8c959f',
  yellow: '#9a6700',
  brightYellow: '#7d4e00',
};

const query = window.matchMedia('(prefers-color-scheme: dark)');

export function currentTheme() {
  return query.matches ? dark : light;
}

// onThemeChange calls fn with the new theme whenever the system setting
// changes; it returns a function that stops it.
export function onThemeChange(fn) {
  const listener = () => fn(currentTheme());
  query.addEventListener('change', listener);
  return () => query.removeEventListener('change', listener);
}
