# Conformance proof task (see README.md): append one JSON line to $CONFORMANCE_PROOF.
# Strings are read as UTF-8 whatever locale the runner gives the process.
require 'json'

utf8 = ->(s) { s.nil? ? nil : s.dup.force_encoding(Encoding::UTF_8) }
line = JSON.generate({
  'lang' => 'ruby',
  'argv' => ARGV.map(&utf8),
  'text' => utf8.call(ENV['CONFORMANCE_TEXT']),
  'leak' => utf8.call(ENV['CONFORMANCE_RUNNER_ONLY']),
  'stdin' => utf8.call($stdin.binmode.read),
  'task_id' => ENV['PHLASK_TASK_ID'],
  'attempt' => ENV['PHLASK_ATTEMPT'],
  'queue' => ENV['PHLASK_QUEUE'],
})
File.open(ENV.fetch('CONFORMANCE_PROOF'), 'ab') { |f| f.write(line + "\n") }
