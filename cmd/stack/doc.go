// Command stack is the CLI: it parses flags, loads the compose project,
// observes the host, computes and prints the plan, confirms destructive
// steps, applies, and renders progress. It holds no logic of its own beyond
// flag handling and rendering; it may import every package of the module.
package main
