package api

import (
	"strings"
	"unicode/utf8"
)

// utf8Stream decodes output bytes to text as a browser's streaming
// TextDecoder does (the WHATWG Encoding Standard's UTF-8 decoder, with
// {stream: true}): the ancestor's clients received strings, and the
// session's output is cut into frames wherever the ring and the plugin
// happened to cut it. An incomplete sequence at the end of a chunk is held
// until the next chunk completes it, so that a character is never split
// across two messages; each maximal ill-formed subsequence becomes one
// U+FFFD, as the standard says, so that the text is the same as the
// ancestor's whatever the chunking. Its zero value is ready to use.
type utf8Stream struct {
	cp     rune // the code point being assembled
	seen   int  // its continuation bytes read so far
	need   int  // its continuation bytes in all; 0: between characters
	lo, hi byte // the range its next continuation byte must be in
}

// decode returns the text of p after what came before, holding back the
// bytes of a character p does not finish.
func (d *utf8Stream) decode(p []byte) string {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); {
		if d.need == 0 {
			// The fast path: a whole, valid character. Go's decoder
			// accepts exactly what the standard's does.
			r, size := utf8.DecodeRune(p[i:])
			if r != utf8.RuneError || size > 1 {
				b.WriteString(string(p[i : i+size]))
				i += size
				continue
			}
		}
		if d.step(&b, p[i]) {
			i++
		}
	}
	return b.String()
}

// flush ends the stream: a character left unfinished becomes U+FFFD.
func (d *utf8Stream) flush() string {
	if d.need == 0 {
		return ""
	}
	*d = utf8Stream{}
	return string(utf8.RuneError)
}

// step feeds one byte to the standard's decoder state machine, writing
// what it completes to b. It returns false when the byte ended an
// ill-formed sequence without being part of it: the caller feeds it again.
func (d *utf8Stream) step(b *strings.Builder, c byte) bool {
	if d.need == 0 {
		d.lo, d.hi = 0x80, 0xBF
		switch {
		case c <= 0x7F:
			b.WriteByte(c)
		case c >= 0xC2 && c <= 0xDF:
			d.need, d.cp = 1, rune(c&0x1F)
		case c >= 0xE0 && c <= 0xEF:
			switch c {
			case 0xE0:
				d.lo = 0xA0 // no overlong forms
			case 0xED:
				d.hi = 0x9F // no surrogates
			}
			d.need, d.cp = 2, rune(c&0x0F)
		case c >= 0xF0 && c <= 0xF4:
			switch c {
			case 0xF0:
				d.lo = 0x90 // no overlong forms
			case 0xF4:
				d.hi = 0x8F // nothing past U+10FFFF
			}
			d.need, d.cp = 3, rune(c&0x07)
		default:
			b.WriteRune(utf8.RuneError)
		}
		return true
	}
	if c < d.lo || c > d.hi {
		*d = utf8Stream{}
		b.WriteRune(utf8.RuneError)
		return false
	}
	d.lo, d.hi = 0x80, 0xBF
	d.cp = d.cp<<6 | rune(c&0x3F)
	d.seen++
	if d.seen == d.need {
		b.WriteRune(d.cp)
		*d = utf8Stream{}
	}
	return true
}
