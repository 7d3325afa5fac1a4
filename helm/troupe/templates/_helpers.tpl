{{- define "troupe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "troupe.fullname" -}}
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

{{- define "troupe.operatorName" -}}
{{- printf "%s-operator" (include "troupe.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- /* Labels of every object. Pod templates and selectors take troupe.podLabels instead: helm.sh/chart changes with
every chart version, and a changed pod label would roll the pods (a changed selector cannot be applied at all). */}}
{{- define "troupe.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "troupe.podLabels" . }}
{{- end }}

{{- define "troupe.podLabels" -}}
app.kubernetes.io/name: {{ include "troupe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: troupe
{{- end }}

{{- define "troupe.operatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "troupe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "troupe.operatorLabels" -}}
{{ include "troupe.labels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "troupe.operatorPodLabels" -}}
{{ include "troupe.podLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "troupe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "troupe.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "troupe.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- /*
What the operator reads and writes (docs/operator.md, "RBAC the operator needs"). No "*", and no delete: owner
references let the garbage collector remove what the operator created.
*/}}
{{- define "troupe.operatorRules" -}}
- apiGroups: ["troupe.dev"]
  resources: ["workerpools", "actors", "pipelines"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["troupe.dev"]
  resources: ["workerpools/status", "actors/status", "pipelines/status"]
  verbs: ["patch"]
# Pool Deployments carry an owner reference with blockOwnerDeletion; clusters that enforce owner-reference
# permissions (OwnerReferencesPermissionEnforcement) require update on the owner's finalizers for that.
- apiGroups: ["troupe.dev"]
  resources: ["workerpools/finalizers"]
  verbs: ["update"]
# the operator owns its Deployments and Services: watched (a hand edit is reverted at once) and replaced whole
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "update", "patch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "update"]
# the namespace's Actor settings, mounted by worker pods
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "update"]
# broker URLs come from Secret references, read from an informer cache (as KEDA and controller-runtime do), so
# the operator lists and watches Secrets in the namespaces it watches
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
# pod-deletion-cost annotations on the least busy worker pods before a scale-down
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
# listing PodMonitors also tells whether the Prometheus Operator is installed
- apiGroups: ["monitoring.coreos.com"]
  resources: ["podmonitors"]
  verbs: ["get", "list", "create", "update"]
{{- end }}
