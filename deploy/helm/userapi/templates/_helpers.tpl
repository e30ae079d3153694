{{- define "userapi.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "userapi.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "userapi.labels" -}}
{{ include "userapi.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "userapi.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Seconds as a Go duration, the form the service reads. */}}
{{- define "userapi.seconds" -}}
{{ int . }}s
{{- end -}}

{{/*
Settings the chart sets from other values, and the value to set instead: a
second definition in config would be ambiguous, so it is an error.
*/}}
{{- define "userapi.owned" -}}
DATABASE_URL: database.secretName
REDIS_URL: redis.secretName
USERAPI_ADDR: service.port
USERAPI_METRICS_ADDR: metrics.port
USERAPI_DRAIN_DELAY: shutdown.drainDelaySeconds
USERAPI_SHUTDOWN_TIMEOUT: shutdown.timeoutSeconds
{{- end -}}

{{/*
The environment of every container: the secrets, the settings the chart owns,
then config. Call with (dict "root" $ "workers" "0") to force USERAPI_WORKERS.
*/}}
{{- define "userapi.env" -}}
{{- $v := .root.Values -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.secretName: name the Secret that holds DATABASE_URL" $v.database.secretName }}
      key: {{ $v.database.secretKey }}
- name: REDIS_URL
{{- if $v.redis.secretName }}
  valueFrom:
    secretKeyRef:
      name: {{ $v.redis.secretName }}
      key: {{ $v.redis.secretKey }}
{{- else }}
  value: "off"
{{- end }}
- name: USERAPI_ADDR
  value: {{ printf ":%d" (int $v.service.port) | quote }}
- name: USERAPI_METRICS_ADDR
  value: {{ printf ":%d" (int $v.metrics.port) | quote }}
- name: USERAPI_DRAIN_DELAY
  value: {{ include "userapi.seconds" $v.shutdown.drainDelaySeconds | quote }}
- name: USERAPI_SHUTDOWN_TIMEOUT
  value: {{ include "userapi.seconds" $v.shutdown.timeoutSeconds | quote }}
{{- if .workers }}
- name: USERAPI_WORKERS
  value: {{ .workers | quote }}
{{- end }}
{{- $owned := include "userapi.owned" . | fromYaml }}
{{- $config := $v.config | default dict }}
{{- range $name := keys $config | sortAlpha }}
{{- if hasKey $owned $name }}
{{- fail (printf "config.%s: the chart sets it; set %s instead" $name (get $owned $name)) }}
{{- end }}
{{- if not (and $.workers (eq $name "USERAPI_WORKERS")) }}
- name: {{ $name }}
  value: {{ get $config $name | toString | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "userapi.terminationGracePeriodSeconds" -}}
{{ add .Values.shutdown.drainDelaySeconds .Values.shutdown.timeoutSeconds .Values.shutdown.marginSeconds }}
{{- end -}}

{{- define "userapi.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "userapi.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Pod settings shared by every workload. */}}
{{- define "userapi.podCommon" -}}
securityContext:
  {{- include "userapi.podSecurityContext" . | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  # The root filesystem is read-only; /tmp is the one writable place.
  - name: tmp
    emptyDir: {}
{{- end -}}
