{{/* Chart name, truncated to the 63 characters a label value may hold. */}}
{{- define "pgrotate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, or the release name alone when it already holds the chart name. */}}
{{- define "pgrotate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A CronJob name is limited to 52 characters (the controller appends 11 to its Jobs). */}}
{{- define "pgrotate.cronjobName" -}}
{{- include "pgrotate.fullname" . | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "pgrotate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pgrotate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pgrotate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pgrotate.labels" -}}
helm.sh/chart: {{ include "pgrotate.chart" . }}
{{ include "pgrotate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "pgrotate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pgrotate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "pgrotate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "pgrotate.cronjobEnabled" -}}
{{- if or (eq .Values.mode "cronjob") (eq .Values.mode "both") }}true{{ end }}
{{- end }}

{{- define "pgrotate.workerEnabled" -}}
{{- if or (eq .Values.mode "worker") (eq .Values.mode "both") }}true{{ end }}
{{- end }}

{{/*
Mount the API token when asked, or when pgrotate itself calls the Kubernetes API: the kubernetes
secret provider (rbac.secretNamespaces) and rollout restarts (rbac.restartNamespaces) use the
in-cluster ServiceAccount.
*/}}
{{- define "pgrotate.automountToken" -}}
{{- $r := .Values.rbac }}
{{- if or .Values.serviceAccount.automountToken (and $r.create (or $r.secretNamespaces $r.restartNamespaces)) }}true{{ else }}false{{ end }}
{{- end }}

{{- define "pgrotate.configMapName" -}}
{{- default (include "pgrotate.fullname" .) .Values.existingConfigMap }}
{{- end }}

{{/* Does the worker's HTTP side use TLS (config.http.tls set)? */}}
{{- define "pgrotate.httpScheme" -}}
{{- $http := .Values.config.http | default dict }}
{{- if $http.tls }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{/*
The config file: `config` as given; with the worker enabled and no http.listen, the worker
listens on all interfaces at worker.port so that the Service and probes reach it.
*/}}
{{- define "pgrotate.configYaml" -}}
{{- $cfg := deepCopy .Values.config }}
{{- if include "pgrotate.workerEnabled" . }}
{{- $http := get $cfg "http" | default dict }}
{{- if not (hasKey $http "listen") }}
{{- $_ := set $http "listen" (printf "0.0.0.0:%d" (int .Values.worker.port)) }}
{{- $_ := set $cfg "http" $http }}
{{- end }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* The worker's container port: worker.port, or the port of config.http.listen. */}}
{{- define "pgrotate.workerPort" -}}
{{- $http := .Values.config.http | default dict }}
{{- if $http.listen }}
{{- $http.listen | splitList ":" | last }}
{{- else }}
{{- int .Values.worker.port }}
{{- end }}
{{- end }}

{{/*
The pod spec shared by the CronJob and the Deployment. Call with
(dict "root" $ "args" (list ...) "resources" (dict ...) "restartPolicy" "Never" "probes" bool).
*/}}
{{- define "pgrotate.podSpec" -}}
{{- $root := .root }}
{{- $v := $root.Values -}}
serviceAccountName: {{ include "pgrotate.serviceAccountName" $root }}
automountServiceAccountToken: {{ include "pgrotate.automountToken" $root }}
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- if .restartPolicy }}
restartPolicy: {{ .restartPolicy }}
{{- end }}
{{- with .terminationGracePeriodSeconds }}
terminationGracePeriodSeconds: {{ . }}
{{- end }}
securityContext:
  {{- toYaml $v.podSecurityContext | nindent 2 }}
containers:
  - name: pgrotate
    image: {{ include "pgrotate.image" $root | quote }}
    imagePullPolicy: {{ $v.image.pullPolicy }}
    args:
      {{- toYaml .args | nindent 6 }}
    env:
      - name: PGROTATE_CONFIG
        value: {{ printf "%s/pgrotate.yaml" $v.configMountPath | quote }}
      - name: PGROTATE_LOG_LEVEL
        value: {{ $v.logLevel | quote }}
      {{- range $name, $key := $v.secretEnv }}
      - name: {{ $name }}
        valueFrom:
          secretKeyRef:
            name: {{ required "secretEnv needs existingSecret (the name of a Secret you manage)" $v.existingSecret }}
            key: {{ $key | quote }}
      {{- end }}
      {{- with $v.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- if or $v.secretEnvFrom $v.extraEnvFrom }}
    envFrom:
      {{- if $v.secretEnvFrom }}
      - secretRef:
          name: {{ required "secretEnvFrom needs existingSecret" $v.existingSecret }}
      {{- end }}
      {{- with $v.extraEnvFrom }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- end }}
    {{- if .port }}
    ports:
      - name: http
        containerPort: {{ .port }}
        protocol: TCP
    {{- end }}
    {{- if .probes }}
    {{- if $v.worker.livenessProbe.enabled }}
    livenessProbe:
      httpGet:
        path: /healthz
        port: http
        scheme: {{ include "pgrotate.httpScheme" $root }}
      {{- toYaml (omit $v.worker.livenessProbe "enabled") | nindent 6 }}
    {{- end }}
    {{- if $v.worker.readinessProbe.enabled }}
    readinessProbe:
      httpGet:
        path: /readyz
        port: http
        scheme: {{ include "pgrotate.httpScheme" $root }}
      {{- toYaml (omit $v.worker.readinessProbe "enabled") | nindent 6 }}
    {{- end }}
    {{- end }}
    securityContext:
      {{- toYaml $v.securityContext | nindent 6 }}
    resources:
      {{- toYaml .resources | nindent 6 }}
    volumeMounts:
      - name: config
        mountPath: {{ $v.configMountPath }}
        readOnly: true
      - name: tmp
        mountPath: /tmp
      {{- if $v.secretFiles.enabled }}
      - name: secrets
        mountPath: {{ $v.secretFiles.mountPath }}
        readOnly: true
      {{- end }}
      {{- if $v.vaultToken.enabled }}
      - name: vault-token
        mountPath: {{ $v.vaultToken.mountPath }}
        readOnly: true
      {{- end }}
      {{- with $v.extraVolumeMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
volumes:
  - name: config
    configMap:
      name: {{ include "pgrotate.configMapName" $root }}
      items:
        - key: pgrotate.yaml
          path: pgrotate.yaml
  - name: tmp
    emptyDir:
      sizeLimit: {{ $v.tmpSizeLimit }}
  {{- if $v.secretFiles.enabled }}
  - name: secrets
    secret:
      secretName: {{ required "secretFiles needs existingSecret" $v.existingSecret }}
      defaultMode: 256  # 0400
  {{- end }}
  {{- if $v.vaultToken.enabled }}
  - name: vault-token
    projected:
      defaultMode: 256  # 0400
      sources:
        - serviceAccountToken:
            path: token
            audience: {{ $v.vaultToken.audience | quote }}
            expirationSeconds: {{ int $v.vaultToken.expirationSeconds }}
  {{- end }}
  {{- with $v.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Pod metadata labels and annotations (config checksum rolls the workers on a config change). */}}
{{- define "pgrotate.podMetadata" -}}
{{- $root := .root -}}
labels:
  {{- include "pgrotate.selectorLabels" $root | nindent 2 }}
  app.kubernetes.io/component: {{ .component }}
  {{- with $root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  checksum/config: {{ include "pgrotate.configYaml" $root | sha256sum }}
  {{- with $root.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
