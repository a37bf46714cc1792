// Image references: `[domain[:port]/]path[:tag][@algorithm:hex]`, parsed and normalised the way
// Docker does (github.com/distribution/reference, ParseNormalizedNamed).
//
// Grammar (regexp.go):
//   domain         := host [":" port]
//   host           := domain-name | "[" ipv6 "]"
//   domain-name    := label ("." label)*
//   label          := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//   path           := path-component ("/" path-component)*
//   path-component := [a-z0-9]+ ((?:[._]|__|[-]+)[a-z0-9]+)*
//   tag            := [\w][\w.-]{0,127}
//   digest         := validated by oci::Digest::parse (sha256 or sha512 only)
//
// Normalisation (normalize.go): the first '/'-separated component is a domain only when it is
// "localhost", contains '.' or ':', or contains an upper-case letter (upper case is not allowed
// in a path, so "Foo/bar" names a registry host "Foo"); otherwise the domain is docker.io.
// "index.docker.io" becomes "docker.io"; a single-component path on docker.io gains "library/";
// a reference with neither tag nor digest gets the tag "latest". A bare "host:5000" has no '/',
// so — as in Docker — it is the image docker.io/library/host with tag "5000".
// The canonical name (domain + "/" + path) may be at most 255 characters.
#pragma once

#include <minibuild/base/error.hpp>
#include <minibuild/oci/digest.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace minibuild::registry {

/// Docker Hub's name in references ("docker.io/library/alpine").
inline constexpr std::string_view k_docker_hub_domain = "docker.io";
/// The host that actually serves Docker Hub's registry API.
inline constexpr std::string_view k_docker_hub_api_host = "registry-1.docker.io";
/// The tag given to a reference that names neither tag nor digest.
inline constexpr std::string_view k_default_tag = "latest";
/// Longest canonical name (domain + "/" + path) a reference may have.
inline constexpr std::size_t k_max_name_length = 255;

/// A parsed, normalised image reference. Values produced by parse_reference() always hold a
/// non-empty domain and path and at least one of tag and digest; both may be present
/// ("app:1@sha256:…": the digest decides what is pulled, the tag is kept for display).
struct Reference {
  std::string domain;                ///< "docker.io", "localhost:5000", "[::1]:5000"
  std::string path;                  ///< "library/alpine", "org/app"
  std::optional<std::string> tag;    ///< "latest", "3.19"
  std::optional<oci::Digest> digest; ///< set when the reference pins content

  /// Canonical text: "docker.io/library/alpine:latest", "ghcr.io/o/a@sha256:…",
  /// "docker.io/library/app:1@sha256:…". parse_reference(to_string()) gives an equal value.
  std::string to_string() const;
  /// "domain/path": the repository the registry API addresses ("docker.io/library/alpine").
  std::string repository() const;
  /// The repository as Docker displays it: docker.io and a lone "library/" prefix dropped
  /// ("alpine", "user/app", "ghcr.io/org/app").
  std::string familiar_name() const;
  /// familiar_name() plus tag and digest as stored ("alpine:latest", "user/app:1").
  std::string familiar_string() const;
  /// Host[:port] to contact for the registry API: registry-1.docker.io for docker.io,
  /// otherwise the domain itself.
  std::string api_host() const;
  /// True when the domain is a loopback host — "localhost", 127.0.0.0/8 or [::1], any port —
  /// where, as Docker does, plain HTTP is allowed without configuring an insecure registry.
  bool is_insecure_by_default() const;

  friend bool operator==(const Reference&, const Reference&) = default;
};

/// Parses and normalises `text` (see the file comment). Any violation gives Code::usage with a
/// message quoting the input and naming the problem ("repository name must be lowercase",
/// "invalid tag", "invalid digest", "empty", "longer than 255 characters"); a well-formed
/// digest of an algorithm minibuild cannot verify gives Code::unsupported. Pure: no I/O.
Result<Reference> parse_reference(std::string_view text);

} // namespace minibuild::registry
