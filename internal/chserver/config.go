package chserver

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"text/template"
)

// configTemplate is the server configuration. It names only what a local
// server needs, so that what 18.16 and current releases understand alike:
//   - <yandex> as the root: current releases still accept it, 18.16 knows
//     no other.
//   - no interserver_http_port, mysql_port or postgresql_port: a server
//     only opens those when they are configured, and two local servers
//     would otherwise fight over the default ports.
//   - no system log tables (query_log, …): they are created only when
//     configured and would only cost disk and background merges here.
//   - caches sized for a laptop rather than the 5-8 GiB defaults.
//   - UTC, so that DateTime columns mean the same on every machine.
var configTemplate = template.Must(template.New("config").Funcs(template.FuncMap{"x": xmlEscape}).Parse(`<?xml version="1.0"?>
<!-- Written by Parley (internal/chserver); rewritten at every start. -->
<yandex>
    <logger>
        <level>information</level>
        <log>{{x .Dir}}/log/clickhouse-server.log</log>
        <errorlog>{{x .Dir}}/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{{.TCPPort}}</tcp_port>
    <http_port>{{.HTTPPort}}</http_port>
{{- if .CertFile}}
    <tcp_port_secure>{{.TLSPort}}</tcp_port_secure>
    <openSSL>
        <server>
            <certificateFile>{{x .CertFile}}</certificateFile>
            <privateKeyFile>{{x .KeyFile}}</privateKeyFile>
{{- if .CAFile}}
            <caConfig>{{x .CAFile}}</caConfig>
            <verificationMode>strict</verificationMode>
{{- else}}
            <verificationMode>none</verificationMode>
{{- end}}
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>
{{- end}}
    <path>{{x .Dir}}/data/</path>
    <tmp_path>{{x .Dir}}/tmp/</tmp_path>
    <user_files_path>{{x .Dir}}/user_files/</user_files_path>
    <format_schema_path>{{x .Dir}}/format_schemas/</format_schema_path>
    <users_config>{{x .Dir}}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <max_connections>1024</max_connections>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mlock_executable>false</mlock_executable>
</yandex>
`))

// usersTemplate: one user, "default", without a password and reachable
// from loopback only. allow_experimental_low_cardinality_type is what 18.16
// needs before it creates LowCardinality columns; current releases accept
// it as an obsolete, ignored setting. poll_interval 1 (default 10): an idle
// native connection notices a shutdown within a second instead of holding
// the server's exit for ten (a connection pool always has idle ones).
var usersTemplate = template.Must(template.New("users").Funcs(template.FuncMap{"x": xmlEscape}).Parse(`<?xml version="1.0"?>
<!-- Written by Parley (internal/chserver); rewritten at every start. -->
<yandex>
    <profiles>
        <default>
            <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
            <max_memory_usage>4000000000</max_memory_usage>
            <poll_interval>1</poll_interval>
        </default>
    </profiles>
    <users>
        <default>
            <password>{{x .Password}}</password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
`))

func writeConfig(o Options) error {
	for name, t := range map[string]*template.Template{"config.xml": configTemplate, "users.xml": usersTemplate} {
		var b bytes.Buffer
		if err := t.Execute(&b, o); err != nil {
			return fmt.Errorf("chserver: render %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(o.Dir, name), b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("chserver: %w", err)
		}
	}
	return nil
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
