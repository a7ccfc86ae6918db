package ingress

import (
	"net"
	"sync"
)

// perIPListener closes, at once, connections from an address that already
// has max open ones, so idle or slow clients from one address cannot take
// every connection. (fasthttp's own MaxConnsPerIP wrapper clears its
// connection on Close while a read may still use it: a data race, and a
// possible nil dereference, at shutdown.)
type perIPListener struct {
	net.Listener
	max int

	mu   sync.Mutex
	open map[string]int
}

func limitPerIP(ln net.Listener, max int) net.Listener {
	return &perIPListener{Listener: ln, max: max, open: map[string]int{}}
}

func (l *perIPListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		l.mu.Lock()
		ok := l.open[ip] < l.max
		if ok {
			l.open[ip]++
		}
		l.mu.Unlock()
		if ok {
			return &countedConn{Conn: c, release: func() { l.release(ip) }}, nil
		}
		_ = c.Close()
		connsRefused.Inc()
	}
}

func (l *perIPListener) release(ip string) {
	l.mu.Lock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
	l.mu.Unlock()
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// countedConn gives its place back once, on the first Close.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
