package shared

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// hostileServer is a plugin speaking the raw protocol, answering what its
// fields say.
type hostileServer struct {
	proto.UnimplementedEnvironmentServer
	info     *proto.InfoResponse
	infoErr  error
	sessions *proto.SessionsResponse
	// first answers a session's start (nil: started); frames are sent
	// on a session stream after it.
	first  *proto.SessionResponse
	frames []*proto.SessionResponse
	// endErr, if set, ends the stream after frames.
	endErr error
}

func (s *hostileServer) Info(context.Context, *proto.InfoRequest) (*proto.InfoResponse, error) {
	return s.info, s.infoErr
}

func (s *hostileServer) Sessions(context.Context, *proto.SessionsRequest) (*proto.SessionsResponse, error) {
	return s.sessions, nil
}

func (s *hostileServer) Session(stream proto.Environment_SessionServer) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	first := s.first
	if first == nil {
		first = &proto.SessionResponse{Frame: &proto.SessionResponse_Started{Started: &proto.Started{}}}
	}
	if err := stream.Send(first); err != nil {
		return err
	}
	for _, f := range s.frames {
		if err := stream.Send(f); err != nil {
			return err
		}
	}
	if s.endErr != nil {
		return s.endErr
	}
	<-stream.Context().Done()
	return nil
}

func (s *hostileServer) Close(context.Context, *proto.CloseRequest) (*proto.CloseResponse, error) {
	return &proto.CloseResponse{}, nil
}

// rawPlugin serves a raw server through go-plugin, as a plugin process
// does, and dispenses a GRPCClient.
type rawPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv proto.EnvironmentServer
}

func (p *rawPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	proto.RegisterEnvironmentServer(s, p.srv)
	return nil
}

func (p *rawPlugin) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewGRPCClient(ctx, c), nil
}

// glueRaw serves srv over go-plugin's connection, whose calls take
// messages of up to 2 GiB unless the client bounds them.
func glueRaw(t *testing.T, srv proto.EnvironmentServer) *GRPCClient {
	t.Helper()
	client, _ := testGRPCConn(t, map[string]plugin.Plugin{PluginName: &rawPlugin{srv: srv}})
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(*GRPCClient)
}

func outputFrame(n int) *proto.SessionResponse {
	return &proto.SessionResponse{Frame: &proto.SessionResponse_Output{Output: bytes.Repeat([]byte("x"), n)}}
}

func exitFrame(e *proto.Exit) *proto.SessionResponse {
	return &proto.SessionResponse{Frame: &proto.SessionResponse_Exit{Exit: e}}
}

// An output frame larger than the host takes fails its session with an
// error saying so; the frames before it arrive.
func TestOversizedOutputFrame(t *testing.T) {
	ctx := testContext(t)
	c := glueRaw(t, &hostileServer{frames: []*proto.SessionResponse{outputFrame(MaxFrameSize), outputFrame(8 << 20), exitFrame(&proto.Exit{})}})
	p, err := c.StreamOnly().Spawn(ctx, SpawnRequest{SessionID: "s1", Size: Size{Cols: 80, Rows: 24}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	got, err := io.ReadAll(p)
	if len(got) != MaxFrameSize {
		t.Errorf("read %d bytes, want the full frame before the oversized one, %d", len(got), MaxFrameSize)
	}
	if !errors.Is(err, ErrPluginProtocol) || errors.Is(err, ErrPluginExited) || !strings.Contains(err.Error(), "larger than max") {
		t.Errorf("Read: %v, want the session failed for a message larger than max, as a protocol error", err)
	}
	if _, err := p.Wait(ctx); err == nil {
		t.Error("Wait: no error after an oversized frame")
	}
}

// A plugin that answers a start with anything but started, or sends a
// frame out of place on a session's stream, fails the call or the session
// with ErrPluginProtocol, not as if it had crashed.
func TestProtocolViolations(t *testing.T) {
	ctx := testContext(t)
	started := &proto.SessionResponse{Frame: &proto.SessionResponse_Started{Started: &proto.Started{}}}
	c := glueRaw(t, &hostileServer{first: outputFrame(3)})
	if _, err := c.StreamOnly().Spawn(ctx, SpawnRequest{SessionID: "s1", Size: Size{Cols: 80, Rows: 24}}); !errors.Is(err, ErrPluginProtocol) || errors.Is(err, ErrPluginExited) {
		t.Errorf("Spawn answered with output: %v, want a protocol error", err)
	}

	c = glueRaw(t, &hostileServer{frames: []*proto.SessionResponse{outputFrame(3), started}})
	p, err := c.StreamOnly().Spawn(ctx, SpawnRequest{SessionID: "s2", Size: Size{Cols: 80, Rows: 24}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	got, err := io.ReadAll(p)
	if string(got) != "xxx" || !errors.Is(err, ErrPluginProtocol) || errors.Is(err, ErrPluginExited) {
		t.Errorf("Read: %q, %v; want the output, then a protocol error", got, err)
	}
	if _, err := p.Wait(ctx); !errors.Is(err, ErrPluginProtocol) {
		t.Errorf("Wait: %v, want the protocol error", err)
	}

	// A plugin's own RESOURCE_EXHAUSTED is its error, not a protocol
	// break.
	c = glueRaw(t, &hostileServer{endErr: status.Error(codes.ResourceExhausted, "too many sessions")})
	p, err = c.StreamOnly().Spawn(ctx, SpawnRequest{SessionID: "s3", Size: Size{Cols: 80, Rows: 24}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := io.ReadAll(p); errors.Is(err, ErrPluginProtocol) || !strings.Contains(err.Error(), "too many sessions") {
		t.Errorf("Read: %v, want the plugin's own error", err)
	}
}

// The list of kept sessions may be larger than any other message, up to a
// bound of its own; an Info may not.
func TestOversizedReplies(t *testing.T) {
	ctx := testContext(t)
	reason := strings.Repeat("r", MaxReasonLen)
	var legit []*proto.KeptSession
	for i := range 3000 {
		legit = append(legit, &proto.KeptSession{
			SessionId: fmt.Sprintf("%0128d", i), EnvironmentId: strings.Repeat("e", 128), EnvironmentType: "HOST",
			Exit: &proto.Exit{Code: 1, Signal: "SIGKILL", Reason: reason},
		})
	}
	srv := &hostileServer{sessions: &proto.SessionsResponse{Sessions: legit}}
	c := glueRaw(t, srv)
	if size := gproto(srv.sessions); size <= MaxMessageSize {
		t.Fatalf("the legitimate list is %d bytes: no test", size)
	}
	kept, err := c.Sessions(ctx)
	if err != nil || len(kept) != len(legit) {
		t.Fatalf("Sessions of a legitimate list of %d: %d, %v", len(legit), len(kept), err)
	}

	srv.sessions = &proto.SessionsResponse{Sessions: []*proto.KeptSession{{SessionId: strings.Repeat("x", MaxSessionsMessageSize)}}}
	if _, err := c.Sessions(ctx); !errors.Is(err, ErrPluginProtocol) || !strings.Contains(err.Error(), "larger than max") {
		t.Errorf("Sessions of a list over %d bytes: %v, want it refused as ErrPluginProtocol", MaxSessionsMessageSize, err)
	}

	srv.info = &proto.InfoResponse{Name: "big", Version: strings.Repeat("v", 4<<20), Types: []string{"BIG"}}
	if _, err := c.Info(ctx); err == nil || !strings.Contains(err.Error(), "larger than max") {
		t.Errorf("Info of 4 MiB: %v, want it refused", err)
	}
}

// A Sessions reply is bounded in entries, counted before any is decoded:
// an empty entry takes two bytes on the wire and a hundred times that
// decoded. Entries without an id, with an id too long, or listed twice
// are refused too; the reply is refused whole.
func TestKeptListBounded(t *testing.T) {
	ctx := testContext(t)
	empty := make([]*proto.KeptSession, MaxKeptSessions+1)
	for i := range empty {
		empty[i] = &proto.KeptSession{}
	}
	srv := &hostileServer{sessions: &proto.SessionsResponse{Sessions: empty}}
	c := glueRaw(t, srv)
	if _, err := c.Sessions(ctx); !errors.Is(err, ErrPluginProtocol) || !strings.Contains(err.Error(), fmt.Sprintf("more than %d kept sessions", MaxKeptSessions)) {
		t.Errorf("Sessions of %d entries: %v, want them refused as ErrPluginProtocol", len(empty), err)
	}

	entry := func(id string) *proto.KeptSession {
		return &proto.KeptSession{SessionId: id, EnvironmentId: "env", EnvironmentType: "HOST"}
	}
	for name, list := range map[string][]*proto.KeptSession{
		"no id":        {entry("a"), entry("")},
		"long id":      {entry(strings.Repeat("x", MaxKeptIDLen+1))},
		"long type":    {{SessionId: "a", EnvironmentType: strings.Repeat("T", MaxKeptIDLen+1)}},
		"listed twice": {entry("a"), entry("b"), entry("a")},
	} {
		srv.sessions = &proto.SessionsResponse{Sessions: list}
		if kept, err := c.Sessions(ctx); !errors.Is(err, ErrPluginProtocol) {
			t.Errorf("%s: Sessions = %d, %v; want ErrPluginProtocol", name, len(kept), err)
		}
	}

	// The most a plugin may list, every id, type and exit text as long as
	// it may be, goes.
	most := make([]*proto.KeptSession, 0, MaxKeptSessions)
	long := func(c string, i int) string { return fmt.Sprintf("%s%0*d", c, MaxKeptIDLen-1, i) }
	for i := range MaxKeptSessions {
		most = append(most, &proto.KeptSession{
			SessionId: long("s", i), EnvironmentId: long("e", i), EnvironmentType: long("T", i),
			StartOffset: math.MaxInt64 - 1, EndOffset: math.MaxInt64, Attached: true,
			Exit: &proto.Exit{Code: math.MinInt32, Signal: strings.Repeat("S", MaxSignalLen), Reason: strings.Repeat("r", MaxReasonLen)},
		})
	}
	srv.sessions = &proto.SessionsResponse{Sessions: most}
	if kept, err := c.Sessions(ctx); err != nil || len(kept) != len(most) {
		t.Errorf("Sessions of %d entries at their longest (%d bytes): %d, %v", len(most), gproto(srv.sessions), len(kept), err)
	}
}

func gproto(m *proto.SessionsResponse) int {
	b, err := (frameCodec{}).Marshal(m)
	if err != nil {
		panic(err)
	}
	defer b.Free()
	return b.Len()
}

// GRPCDialOptions bound every call on the connection, go-plugin's own
// services' too, over go-plugin's options (which come first).
func TestDialOptionsBoundMessages(t *testing.T) {
	lis, err := net.Listen("unix", t.TempDir()+"/plugin.sock")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	proto.RegisterEnvironmentServer(s, &hostileServer{info: &proto.InfoResponse{Version: strings.Repeat("v", 1<<20)}})
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)), // go-plugin's
	}
	conn, err := grpc.NewClient("unix://"+lis.Addr().String(), append(opts, GRPCDialOptions()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = proto.NewEnvironmentClient(conn).Info(testContext(t), &proto.InfoRequest{})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a 1 MiB reply on a connection with GRPCDialOptions: %v, want RESOURCE_EXHAUSTED", err)
	}
}

// checkClean reports why s is not text the host keeps from a plugin: longer
// than limit, not UTF-8, or with a control character (other than newline
// and tab, with lines).
func checkClean(s string, limit int, lines bool) error {
	switch {
	case len(s) > limit:
		return fmt.Errorf("%d bytes, more than %d", len(s), limit)
	case !utf8.ValidString(s):
		return errors.New("not UTF-8")
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && !(lines && (r == '\n' || r == '\t')) }) >= 0:
		return errors.New("a control character")
	}
	return nil
}

// A plugin's exit reason and signal are kept bounded, valid UTF-8 and
// without control characters, from an exit frame and from the list of
// kept sessions.
func TestExitTextBounded(t *testing.T) {
	ctx := testContext(t)
	bad := &proto.Exit{
		Code:   -3,
		Signal: "SIG\x00" + strings.Repeat("S", 40<<10),
		// Not UTF-8 is refused by protobuf's decoding already.
		Reason: "r\x00\n\x1b]0;title\x07\u0085" + strings.Repeat("é", 30<<10),
	}
	srv := &hostileServer{
		frames:   []*proto.SessionResponse{outputFrame(3), exitFrame(bad)},
		sessions: &proto.SessionsResponse{Sessions: []*proto.KeptSession{{SessionId: "s1", Exit: bad}}},
	}
	c := glueRaw(t, srv)
	check := func(what string, st ExitStatus) {
		t.Helper()
		if st.Code != -3 {
			t.Errorf("%s: code %d, want -3", what, st.Code)
		}
		if err := checkClean(st.Reason, MaxReasonLen, false); err != nil {
			t.Errorf("%s: reason %.40q...: %v", what, st.Reason, err)
		}
		if err := checkClean(st.Signal, MaxSignalLen, false); err != nil {
			t.Errorf("%s: signal %.40q...: %v", what, st.Signal, err)
		}
		if !strings.HasPrefix(st.Reason, "r  ") || !strings.HasSuffix(st.Reason, "é"+ellipsis) {
			t.Errorf("%s: reason %.40q...%q, want the text kept, cut", what, st.Reason, st.Reason[max(0, len(st.Reason)-10):])
		}
	}
	p, err := c.StreamOnly().Spawn(ctx, SpawnRequest{SessionID: "s1", Size: Size{Cols: 80, Rows: 24}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := io.ReadAll(p); err != nil {
		t.Fatalf("Read: %v", err)
	}
	st, err := p.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	check("exit frame", st)
	kept, err := c.Sessions(ctx)
	if err != nil || len(kept) != 1 || kept[0].Exit == nil {
		t.Fatalf("Sessions: %+v, %v", kept, err)
	}
	check("kept session", *kept[0].Exit)
}

// A plugin's Info is kept with its name and version bounded and clean; an
// Info whose types or capabilities are not short names is refused.
func TestInfoBounded(t *testing.T) {
	ctx := testContext(t)
	srv := &hostileServer{info: &proto.InfoResponse{
		Name: "evil\x1b[31m", Version: strings.Repeat("6", 10<<10), Types: []string{"EVIL"}, Capabilities: []string{CapResize},
	}}
	c := glueRaw(t, srv)
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkClean(info.Name, MaxInfoLen, false); err != nil || info.Name != "evil [31m" {
		t.Errorf("name %q: %v", info.Name, err)
	}
	if err := checkClean(info.Version, MaxInfoLen, false); err != nil {
		t.Errorf("version %.20q...: %v", info.Version, err)
	}
	if len(info.Types) != 1 || info.Types[0] != "EVIL" || len(info.Capabilities) != 1 {
		t.Errorf("types %q, capabilities %q: changed", info.Types, info.Capabilities)
	}
	many := make([]string, MaxInfoNames+1)
	for i := range many {
		many[i] = fmt.Sprint("T", i)
	}
	for name, resp := range map[string]*proto.InfoResponse{
		"long type":       {Name: "x", Types: []string{strings.Repeat("T", MaxInfoLen+1)}},
		"type with NUL":   {Name: "x", Types: []string{"EV\x00IL"}},
		"many types":      {Name: "x", Types: many},
		"long capability": {Name: "x", Types: []string{"EVIL"}, Capabilities: []string{strings.Repeat("c", 4<<10)}},
		"many caps":       {Name: "x", Types: []string{"EVIL"}, Capabilities: many},
	} {
		srv.info = resp
		if info, err := c.Info(ctx); err == nil {
			t.Errorf("%s: Info %.60q accepted", name, fmt.Sprint(info))
		} else if why := checkClean(err.Error(), MaxErrorLen, true); why != nil {
			t.Errorf("%s: the error's text: %v", name, why)
		}
	}
}

// A plugin's error message is kept bounded and clean, its lines kept; its
// kind survives.
func TestErrorTextBounded(t *testing.T) {
	ctx := testContext(t)
	msg := "bad \x1b]0;PWNED\x07\x00 thing\n\tand " + strings.Repeat("m", 40<<10)
	c := glueRaw(t, &hostileServer{infoErr: toStatus(fmt.Errorf("%w: %s", ErrInvalidConfig, msg))})
	_, err := c.Info(ctx)
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Info: %v, want ErrInvalidConfig", err)
	}
	if why := checkClean(err.Error(), MaxErrorLen, true); why != nil {
		t.Errorf("error %.60q...: %v", err.Error(), why)
	}
	if !strings.HasPrefix(err.Error(), "invalid environment config: bad  ]0;PWNED   thing\n\tand mmm") {
		t.Errorf("error %.60q...: want the message kept, cleaned", err.Error())
	}
}

func TestCleanText(t *testing.T) {
	for _, tc := range []struct {
		in    string
		limit int
		want  string
	}{
		{"", 10, ""},
		{"plain text", 10, "plain text"},
		{"plain text!", 10, "plain t" + ellipsis},
		{"tab\tnul\x00del\x7fc1\u0085", 40, "tab nul del c1 "},
		{"bad\xffutf8", 40, "bad\uFFFDutf8"},
		{"ééééé", 8, "éé" + ellipsis},   // 10 bytes: cut at a character
		{"aaéééé", 8, "aaé" + ellipsis}, // the cut falls inside an é
		{"SIGKILLSIGKILL", 2, "SI"},     // no room for the ellipsis
		{"日本語テキスト", 9, "日本" + ellipsis}, // 3-byte characters
	} {
		got := cleanText(tc.in, tc.limit)
		if got != tc.want {
			t.Errorf("cleanText(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
		}
		if err := checkClean(got, tc.limit, false); err != nil {
			t.Errorf("cleanText(%q, %d) = %q: %v", tc.in, tc.limit, got, err)
		}
	}
	if got, want := cleanMessage("a\nb\tc\rd\x1be\x00", 40), "a\nb\tc d e "; got != want {
		t.Errorf("cleanMessage: %q, want %q", got, want)
	}
}

// The SDK's server sends an error's message within what a host takes, so
// that a long error (a command's output folded into it) keeps its kind
// rather than breaking the call's trailers.
func TestToStatusBoundsTheMessage(t *testing.T) {
	err := toStatus(fmt.Errorf("%w: %s", ErrInvalidArgument, strings.Repeat("m", 300<<10)))
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("toStatus = %v, want a status", err)
	}
	if n := len(st.Message()); n > MaxErrorLen {
		t.Errorf("message of %d bytes, want at most %d", n, MaxErrorLen)
	}
	if got := fromStatus(err); !errors.Is(got, ErrInvalidArgument) {
		t.Errorf("fromStatus(toStatus(...)) = %.60v..., want ErrInvalidArgument", got)
	}
}
