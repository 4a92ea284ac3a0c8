# Print what this task received, as JSON: args, stdin, environment, working directory.
require "json"

# Without a UTF-8 locale Ruby tags ARGV as ASCII-8BIT or US-ASCII; the bytes are UTF-8.
utf8 = ->(s) { s.dup.force_encoding(Encoding::UTF_8).scrub }
puts JSON.generate(
  "lang" => "ruby",
  "args" => ARGV.map(&utf8),
  "stdin" => utf8.call($stdin.binmode.read),
  "env" => ENV.to_h.transform_keys(&utf8).transform_values(&utf8),
  "cwd" => Dir.pwd,
)
