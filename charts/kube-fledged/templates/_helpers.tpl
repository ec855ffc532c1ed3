{{/* Names, as upstream's chart: fullname = the release name if it contains the chart name, else
<release>-<chart>; 63 characters at most. */}}
{{- define "kubefledged.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubefledged.fullname" -}}
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

{{- define "kubefledged.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubefledged.controllerName" -}}
{{- printf "%s-controller" (include "kubefledged.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "kubefledged.webhookName" -}}
{{- printf "%s-webhook-server" (include "kubefledged.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubefledged.controllerServiceAccount" -}}
{{- default (include "kubefledged.controllerName" .) .Values.serviceAccount.name }}
{{- end }}
{{- define "kubefledged.webhookServiceAccount" -}}
{{- default (include "kubefledged.webhookName" .) .Values.serviceAccount.webhookServerName }}
{{- end }}
{{- define "kubefledged.webhookService" -}}
{{- default (include "kubefledged.webhookName" .) .Values.webhookService.name }}
{{- end }}
{{- define "kubefledged.vwcName" -}}
{{- default (include "kubefledged.webhookName" .) .Values.validatingWebhook.name }}
{{- end }}
{{- define "kubefledged.secretName" -}}
{{- default (printf "%s-cert" (include "kubefledged.webhookName" .)) .Values.secret.name }}
{{- end }}

{{/* Labels of one component: (dict "ctx" $ "component" "controller"|"webhook-server"). The selector is
upstream's, to the letter: name + instance + part-of = <release>-<component>. A Deployment's selector cannot
change, so any other value would make `helm upgrade` of a release installed with upstream's chart fail with
"field is immutable" (docs/deploy.md, "Upgrading from upstream"). */}}
{{- define "kubefledged.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubefledged.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/part-of: {{ .ctx.Release.Name }}-{{ .component }}
{{- end }}
{{- define "kubefledged.labels" -}}
helm.sh/chart: {{ include "kubefledged.chart" .ctx }}
{{ include "kubefledged.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{/* Image references: one image, with upstream's per-role repository overrides. */}}
{{- define "kubefledged.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}
{{- define "kubefledged.controllerImage" -}}
{{- printf "%s:%s" (default .Values.image.repository .Values.image.kubefledgedControllerRepository) (include "kubefledged.tag" .) }}
{{- end }}
{{- define "kubefledged.webhookImage" -}}
{{- printf "%s:%s" (default .Values.image.repository .Values.image.kubefledgedWebhookServerRepository) (include "kubefledged.tag" .) }}
{{- end }}
{{- define "kubefledged.criClientImage" -}}
{{- printf "%s:%s" (default .Values.image.repository .Values.image.kubefledgedCRIClientRepository) (include "kubefledged.tag" .) }}
{{- end }}
{{- define "kubefledged.busyboxImage" -}}
{{- if .Values.image.busyboxImageRepository }}
{{- printf "%s:%s" .Values.image.busyboxImageRepository (default (include "kubefledged.tag" .) .Values.image.busyboxImageVersion) }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "kubefledged.tag" .) }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by both Deployments. */}}
{{- define "kubefledged.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.podSecurityContext }}
securityContext:
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
{{- end }}

{{/* The node agent (mode agent). */}}
{{- define "kubefledged.agentName" -}}
{{- printf "%s-agent" (include "kubefledged.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "kubefledged.agentServiceAccount" -}}
{{- default (include "kubefledged.agentName" .) .Values.agent.serviceAccountName }}
{{- end }}
{{- define "kubefledged.agentImage" -}}
{{- printf "%s:%s" (default .Values.image.repository .Values.agent.repository) (include "kubefledged.tag" .) }}
{{- end }}
