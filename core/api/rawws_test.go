package api

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawWS is a WebSocket client made of a bare TCP connection, checking
// each frame the server sends as RFC 6455 says a server's must be.
type rawWS struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	resp *http.Response
	wmu  sync.Mutex
}

type rawFrame struct {
	fin     bool
	rsv     byte
	opcode  byte
	masked  bool
	payload []byte
	// hdrLen is the header's length, to check the length's encoding.
	hdrLen int
}

// dialRaw upgrades a bare TCP connection to the attach endpoint of
// session id, with extra request headers hdr (e.g. an extension offer).
// rcvbuf, if > 0, sets the socket's receive buffer before connecting.
func dialRaw(t *testing.T, api *apiHarness, id, query string, hdr map[string]string, rcvbuf int) *rawWS {
	t.Helper()
	addr := strings.TrimPrefix(api.srv.URL, "http://")
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if rcvbuf > 0 {
		if err := conn.(*net.TCPConn).SetReadBuffer(rcvbuf); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { conn.Close() })
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	var req strings.Builder
	fmt.Fprintf(&req, "GET /api/v1/sessions/%s/attach%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Protocol: ptyhost.v1\r\n", id, query, addr, base64.StdEncoding.EncodeToString(key))
	for k, v := range hdr {
		fmt.Fprintf(&req, "%s: %s\r\n", k, v)
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", resp.Status)
	}
	return &rawWS{t: t, conn: conn, br: br, resp: resp}
}

// next reads one frame and checks it: no mask from a server, no RSV bit
// (no extension was agreed), the shortest length encoding, control
// frames short and whole.
func (c *rawWS) next(timeout time.Duration) (rawFrame, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	var h [14]byte
	if _, err := io.ReadFull(c.br, h[:2]); err != nil {
		return rawFrame{}, err
	}
	f := rawFrame{fin: h[0]&0x80 != 0, rsv: h[0] & 0x70, opcode: h[0] & 0x0f, masked: h[1]&0x80 != 0, hdrLen: 2}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(c.br, h[2:4]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(h[2:4]))
		f.hdrLen = 4
		if n < 126 {
			return f, fmt.Errorf("length %d in 16 bits", n)
		}
	case 127:
		if _, err := io.ReadFull(c.br, h[2:10]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(h[2:10])
		f.hdrLen = 10
		if n <= 0xffff || n>>63 != 0 {
			return f, fmt.Errorf("length %d in 64 bits", n)
		}
	}
	if f.masked {
		return f, fmt.Errorf("a masked frame from the server")
	}
	if f.rsv != 0 {
		return f, fmt.Errorf("RSV bits %#x set", f.rsv)
	}
	switch f.opcode {
	case 0x0, 0x1, 0x2:
	case 0x8, 0x9, 0xa:
		if n > 125 || !f.fin {
			return f, fmt.Errorf("control frame %#x of %d bytes, fin %v", f.opcode, n, f.fin)
		}
	default:
		return f, fmt.Errorf("opcode %#x", f.opcode)
	}
	if n > 64<<20 {
		return f, fmt.Errorf("length %d", n)
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, f.payload); err != nil {
		return f, err
	}
	return f, nil
}

// send writes one masked frame.
func (c *rawWS) send(fin bool, opcode byte, p []byte) error {
	var b bytes.Buffer
	first := opcode
	if fin {
		first |= 0x80
	}
	b.WriteByte(first)
	switch {
	case len(p) < 126:
		b.WriteByte(0x80 | byte(len(p)))
	case len(p) <= 0xffff:
		b.WriteByte(0x80 | 126)
		_ = binary.Write(&b, binary.BigEndian, uint16(len(p)))
	default:
		b.WriteByte(0x80 | 127)
		_ = binary.Write(&b, binary.BigEndian, uint64(len(p)))
	}
	mask := [4]byte{1, 2, 3, 4}
	b.Write(mask[:])
	for i, x := range p {
		b.WriteByte(x ^ mask[i%4])
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.conn.Write(b.Bytes())
	return err
}
