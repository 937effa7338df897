// Shell-like word splitting for the create form's command, so that a user
// types `bash -c 'echo hi'` as in a shell. Only quoting is understood:
// no variables, globs or operators — the words become the session's argv
// as they are.

// splitWords splits s on whitespace; 'single quotes' group literally,
// "double quotes" group with \" \\ \$ \` escapes, and a backslash outside
// quotes takes the next character literally. It throws on an unterminated
// quote or a trailing backslash, with a message saying so.
export function splitWords(s) {
  const words = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) throw new Error('unterminated single quote: close it with \'');
      word += s.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      inWord = true;
      let closed = false;
      for (i++; i < s.length; i++) {
        const d = s[i];
        if (d === '"') {
          closed = true;
          break;
        }
        if (d === '\\' && i + 1 < s.length && '"\\$`'.includes(s[i + 1])) {
          word += s[++i];
        } else {
          word += d;
        }
      }
      if (!closed) throw new Error('unterminated double quote: close it with "');
    } else if (c === '\\') {
      if (i + 1 >= s.length) throw new Error('a trailing backslash escapes nothing: remove it');
      word += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

// joinWords is splitWords' inverse for display: words with spaces or
// quotes are single-quoted.
export function joinWords(words) {
  return words
    .map((w) => {
      if (w !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(w)) return w;
      return "'" + w.replaceAll("'", "'\\''") + "'";
    })
    .join(' ');
}
