# Policies over one rendered release. input.objects holds every object `helm template`
# produced; each rule adds a message to `deny`, and validate-deploy fails on any message.
# They check what a reviewer would otherwise check by eye, across objects where needed
# (weights against subsets, HPAs against Deployments, grace periods against ConfigMaps).
package dailyfeed.deploy

objs(kind) := [o | some o in input.objects; o.kind == kind]

workloads := array.concat(objs("Deployment"), objs("Job"))

name(o) := sprintf("%s/%s", [o.kind, o.metadata.name])

# --- Deployments -----------------------------------------------------------------------

deny contains msg if {
	some d in objs("Deployment")
	some c in d.spec.template.spec.containers
	some probe in ["startupProbe", "livenessProbe", "readinessProbe"]
	not c[probe]
	msg := sprintf("%s: container %s has no %s", [name(d), c.name, probe])
}

deny contains msg if {
	some d in objs("Deployment")
	some c in d.spec.template.spec.containers
	c.livenessProbe.httpGet.path != "/health/live"
	msg := sprintf("%s: liveness must probe /health/live, not %s", [name(d), c.livenessProbe.httpGet.path])
}

deny contains msg if {
	some d in objs("Deployment")
	some c in d.spec.template.spec.containers
	c.readinessProbe.httpGet.path != "/health/ready"
	msg := sprintf("%s: readiness must probe /health/ready, not %s", [name(d), c.readinessProbe.httpGet.path])
}

deny contains msg if {
	some d in objs("Deployment")
	some label in ["app", "version"]
	not d.spec.template.metadata.labels[label]
	msg := sprintf("%s: pod label %s missing (Kiali groups by app and version)", [name(d), label])
}

# Pods must outlive their drain: grace > preStop sleep + SHUTDOWN_TIMEOUT_SECONDS.
deny contains msg if {
	some d in objs("Deployment")
	some c in d.spec.template.spec.containers
	grace := object.get(d.spec.template.spec, "terminationGracePeriodSeconds", 30)
	need := drain_seconds(c) + prestop_seconds(c)
	grace <= need
	msg := sprintf("%s: terminationGracePeriodSeconds %v must exceed preStop + drain (%v s)", [name(d), grace, need])
}

# (object.get, not `cm.data[key]`: regopy took that, in a comprehension, for every value of
# the ConfigMap, so the last entry of the data won whatever its name.)
env_values(c, key) := [value |
	some ref in c.envFrom
	some cm in objs("ConfigMap")
	cm.metadata.name == ref.configMapRef.name
	value := object.get(cm.data, key, null)
	value != null
]

drain_seconds(c) := to_number(v) if {
	some e in c.env
	e.name == "SHUTDOWN_TIMEOUT_SECONDS"
	v := e.value
} else := to_number(vals[count(vals) - 1]) if {
	vals := env_values(c, "SHUTDOWN_TIMEOUT_SECONDS")
	count(vals) > 0
} else := 8

prestop_seconds(c) := to_number(cmd[1]) if {
	cmd := c.lifecycle.preStop.exec.command
	cmd[0] == "sleep"
} else := c.lifecycle.preStop.sleep.seconds if {
	c.lifecycle.preStop.sleep.seconds
} else := 0

# Every Deployment is covered by a PodDisruptionBudget.
deny contains msg if {
	some d in objs("Deployment")
	not has_pdb(d)
	msg := sprintf("%s: no PodDisruptionBudget selects its pods", [name(d)])
}

has_pdb(d) if {
	some p in objs("PodDisruptionBudget")
	every k, v in p.spec.selector.matchLabels {
		d.spec.template.metadata.labels[k] == v
	}
}

# --- every workload (Deployments and migration Jobs) -------------------------------------

deny contains msg if {
	some w in workloads
	some c in w.spec.template.spec.containers
	some side in ["requests", "limits"]
	some res in ["cpu", "memory"]
	not c.resources[side][res]
	msg := sprintf("%s: container %s has no %s.%s", [name(w), c.name, side, res])
}

deny contains msg if {
	some w in workloads
	some c in w.spec.template.spec.containers
	not non_root(w, c)
	msg := sprintf("%s: container %s may run as root (runAsNonRoot)", [name(w), c.name])
}

non_root(_, c) if c.securityContext.runAsNonRoot == true

non_root(w, c) if {
	w.spec.template.spec.securityContext.runAsNonRoot == true
	not c.securityContext.runAsNonRoot == false
}

deny contains msg if {
	some w in workloads
	some c in w.spec.template.spec.containers
	not c.securityContext.allowPrivilegeEscalation == false
	msg := sprintf("%s: container %s must set allowPrivilegeEscalation: false", [name(w), c.name])
}

deny contains msg if {
	some w in workloads
	some c in w.spec.template.spec.containers
	not c.securityContext.readOnlyRootFilesystem == true
	msg := sprintf("%s: container %s must set readOnlyRootFilesystem: true", [name(w), c.name])
}

deny contains msg if {
	some w in workloads
	some c in w.spec.template.spec.containers
	not "ALL" in object.get(c, ["securityContext", "capabilities", "drop"], [])
	msg := sprintf("%s: container %s must drop ALL capabilities", [name(w), c.name])
}

deny contains msg if {
	some w in workloads
	some c in w.spec.template.spec.containers
	not runtime_default(w, c)
	msg := sprintf("%s: container %s needs seccompProfile RuntimeDefault", [name(w), c.name])
}

runtime_default(_, c) if c.securityContext.seccompProfile.type == "RuntimeDefault"

runtime_default(w, _) if w.spec.template.spec.securityContext.seccompProfile.type == "RuntimeDefault"

deny contains msg if {
	some w in workloads
	some c in w.spec.template.spec.containers
	not regex.match(`^[^:@]+(:[0-9]+)?/[^@]*:[A-Za-z0-9_][A-Za-z0-9_.-]*$`, c.image)
	msg := sprintf("%s: image %s has no tag", [name(w), c.image])
}

deny contains msg if {
	some w in workloads
	some c in w.spec.template.spec.containers
	endswith(c.image, ":latest")
	msg := sprintf("%s: image %s uses :latest", [name(w), c.image])
}

# --- Services ----------------------------------------------------------------------------

deny contains msg if {
	some s in objs("Service")
	some p in s.spec.ports
	p.name != "http"
	not startswith(p.name, "http-")
	msg := sprintf("%s: port %v must be named http or http-<suffix> (Istio protocol selection)", [name(s), p.port])
}

# --- HorizontalPodAutoscalers ------------------------------------------------------------

deny contains msg if {
	some h in objs("HorizontalPodAutoscaler")
	object.get(h.spec, "minReplicas", 1) > h.spec.maxReplicas
	msg := sprintf("%s: minReplicas %v > maxReplicas %v", [name(h), h.spec.minReplicas, h.spec.maxReplicas])
}

deny contains msg if {
	some h in objs("HorizontalPodAutoscaler")
	some m in h.spec.metrics
	m.type == "Resource"
	u := m.resource.target.averageUtilization
	not between(u, 1, 100)
	msg := sprintf("%s: %s target %v%% is outside 1-100", [name(h), m.resource.name, u])
}

deny contains msg if {
	some h in objs("HorizontalPodAutoscaler")
	some res in ["cpu", "memory"]
	count([m | some m in h.spec.metrics; m.type == "Resource"; m.resource.name == res]) == 0
	msg := sprintf("%s: no %s target", [name(h), res])
}

deny contains msg if {
	some h in objs("HorizontalPodAutoscaler")
	some dir in ["scaleUp", "scaleDown"]
	not h.spec.behavior[dir].policies
	msg := sprintf("%s: behavior.%s missing", [name(h), dir])
}

deny contains msg if {
	some h in objs("HorizontalPodAutoscaler")
	h.spec.behavior.scaleDown.stabilizationWindowSeconds < 300
	msg := sprintf("%s: scale-down stabilisation %v s is under 5 minutes", [name(h), h.spec.behavior.scaleDown.stabilizationWindowSeconds])
}

deny contains msg if {
	some h in objs("HorizontalPodAutoscaler")
	ref := h.spec.scaleTargetRef
	count([d | some d in objs(ref.kind); d.metadata.name == ref.name]) == 0
	msg := sprintf("%s: scales %s/%s, which is not rendered", [name(h), ref.kind, ref.name])
}

between(x, lo, hi) if {
	x >= lo
	x <= hi
}

# --- Istio -------------------------------------------------------------------------------

deny contains msg if {
	some vs in objs("VirtualService")
	some i, route in vs.spec.http
	total := sum([weight(route.route, r) | some r in route.route])
	total != 100
	msg := sprintf("%s: http[%v] route weights add up to %v, not 100", [name(vs), i, total])
}

weight(routes, r) := r.weight if r.weight
else := 100 if count(routes) == 1
else := 0

deny contains msg if {
	some vs in objs("VirtualService")
	some route in vs.spec.http
	some r in route.route
	not between(object.get(r, "weight", 0), 0, 100)
	msg := sprintf("%s: weight %v is outside 0-100", [name(vs), r.weight])
}

deny contains msg if {
	some vs in objs("VirtualService")
	some route in vs.spec.http
	not route.timeout
	msg := sprintf("%s: route %v has no timeout", [name(vs), object.get(route, "name", "?")])
}

# Every subset a route names is defined by the DestinationRule of that host...
deny contains msg if {
	some vs in objs("VirtualService")
	some route in vs.spec.http
	some r in route.route
	subset := r.destination.subset
	count([s |
		some dr in objs("DestinationRule")
		dr.spec.host == r.destination.host
		some s in dr.spec.subsets
		s.name == subset
	]) == 0
	msg := sprintf("%s: subset %s of %s is not in any DestinationRule", [name(vs), subset, r.destination.host])
}

# ...and selects pods of some Deployment.
deny contains msg if {
	some dr in objs("DestinationRule")
	some s in dr.spec.subsets
	count([d |
		some d in objs("Deployment")
		every k, v in s.labels {
			d.spec.template.metadata.labels[k] == v
		}
		startswith(dr.spec.host, concat("", [service_of(d), "."]))
	]) == 0
	msg := sprintf("%s: subset %s selects no Deployment's pods", [name(dr), s.name])
}

# The Service a Deployment's pods belong to (same app label).
service_of(d) := s.metadata.name if {
	some s in objs("Service")
	every k, v in s.spec.selector {
		d.spec.template.metadata.labels[k] == v
	}
}

deny contains msg if {
	some dr in objs("DestinationRule")
	some part in ["loadBalancer", "connectionPool", "outlierDetection"]
	not dr.spec.trafficPolicy[part]
	msg := sprintf("%s: trafficPolicy.%s missing", [name(dr), part])
}

deny contains msg if {
	count(objs("DestinationRule")) > 0
	count([p | some p in objs("PeerAuthentication"); p.spec.mtls.mode == "STRICT"]) == 0
	msg := "no PeerAuthentication with mtls STRICT"
}

# Every Service has a DestinationRule when Istio objects are rendered.
deny contains msg if {
	count(objs("DestinationRule")) > 0
	some s in objs("Service")
	count([dr | some dr in objs("DestinationRule"); startswith(dr.spec.host, concat("", [s.metadata.name, "."]))]) == 0
	msg := sprintf("%s: no DestinationRule", [name(s)])
}

# --- service identity and admin routes (docs/security.md) ------------------------------

authz(action) := [p |
	some p in objs("AuthorizationPolicy")
	p.spec.action == action
]

selects(p, d) if {
	every k, v in p.spec.selector.matchLabels {
		d.spec.template.metadata.labels[k] == v
	}
}

# With the mesh's policies on, every Deployment is behind an ALLOW policy (internal routes
# only from named callers) and a DENY policy for /admin/**.
deny contains msg if {
	count(objs("AuthorizationPolicy")) > 0
	some d in objs("Deployment")
	some action in ["ALLOW", "DENY"]
	not has_authz(d, action)
	msg := sprintf("%s: no %s AuthorizationPolicy selects its pods", [name(d), action])
}

has_authz(d, action) if {
	some p in authz(action)
	selects(p, d)
}

# An ALLOW rule that opens an /internal path names its callers' principals, and only those.
deny contains msg if {
	some p in authz("ALLOW")
	some rule in p.spec.rules
	some to in object.get(rule, "to", [])
	some path in object.get(to.operation, "paths", [])
	startswith(path, "/internal")
	not rule_has_principals(rule)
	msg := sprintf("%s: %s is open to every caller (a rule for an internal route must name principals)", [name(p), path])
}

rule_has_principals(rule) if {
	some from in rule.from
	count(object.get(from.source, "principals", [])) > 0
	not "*" in from.source.principals
}

# A rule without paths (or with notPaths) must still keep /internal/** out.
deny contains msg if {
	some p in authz("ALLOW")
	some rule in p.spec.rules
	not rule_has_principals(rule)
	some to in object.get(rule, "to", [{"operation": {}}])
	count(object.get(to.operation, "paths", [])) == 0
	not excludes_internal(to.operation)
	msg := sprintf("%s: a rule open to every caller does not exclude /internal/*", [name(p)])
}

excludes_internal(operation) if "/internal/*" in operation.notPaths

# The DENY policy covers /admin/**.
deny contains msg if {
	some p in authz("DENY")
	endswith(p.metadata.name, "-admin")
	not admin_denied(p)
	msg := sprintf("%s: does not deny /admin/*", [name(p)])
}

admin_denied(p) if {
	some rule in p.spec.rules
	some to in rule.to
	"/admin/*" in to.operation.paths
}

# A service-identity key comes from a Secret, never a literal value.
deny contains msg if {
	some d in objs("Deployment")
	some c in d.spec.template.spec.containers
	some e in object.get(c, "env", [])
	e.name == "SERVICE_IDENTITY_KEY"
	not e.valueFrom.secretKeyRef
	msg := sprintf("%s: SERVICE_IDENTITY_KEY must come from a Secret", [name(d)])
}
