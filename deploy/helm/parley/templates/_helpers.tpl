{{- define "parley.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "parley.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "parley.selectorLabels" -}}
app.kubernetes.io/name: {{ include "parley.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "parley.labels" -}}
{{ include "parley.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The headless Service that names the members (parley-0.<it>). */}}
{{- define "parley.membersName" -}}
{{- printf "%s-members" (include "parley.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "parley.configSecret" -}}
{{- .Values.existingConfigSecret | default (printf "%s-config" (include "parley.fullname" .)) -}}
{{- end -}}

{{/*
The configuration file: values.config with what the chart owns on top:
the listener (the probes and Services use port 8080) and node_id, the pod
name (stable in a StatefulSet: docs/sessions.md).
*/}}
{{- define "parley.config" -}}
{{- $own := dict "http" (dict "addr" "0.0.0.0:8080") "node_id" "${POD_NAME}" -}}
{{- toYaml (mustMergeOverwrite (deepCopy .Values.config) $own) -}}
{{- end -}}
