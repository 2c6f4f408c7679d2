package engine

// Labels that compose-aware tools recognise. stack writes them on every
// container, network and volume it creates and reads them back to observe.
const (
	LabelProject     = "com.docker.compose.project"
	LabelService     = "com.docker.compose.service"
	LabelNumber      = "com.docker.compose.container-number"
	LabelOneOff      = "com.docker.compose.oneoff"
	LabelConfigHash  = "com.docker.compose.config-hash"
	LabelDependsOn   = "com.docker.compose.depends_on"
	LabelImage       = "com.docker.compose.image"
	LabelNetwork     = "com.docker.compose.network"
	LabelVolume      = "com.docker.compose.volume"
	LabelWorkingDir  = "com.docker.compose.project.working_dir"
	LabelConfigFiles = "com.docker.compose.project.config_files"
	LabelVersion     = "com.docker.compose.version"
	LabelReplace     = "com.docker.compose.replace"

	// LabelName carries the container's user-visible name. containerd IDs are
	// immutable, so a replacement is created under a fresh ID and renamed by
	// rewriting this label, the way compose renames after create-before-stop.
	LabelName = "dev.stack.name"
	// LabelHashVersion records the version of the config-hash algorithm so a
	// newer stack can tell an old hash from a changed service.
	LabelHashVersion = "dev.stack.hash-version"
)
