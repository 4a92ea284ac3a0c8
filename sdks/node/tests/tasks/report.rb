# A Ruby task: writes what it received (argv, env, stdin) as JSON to PHLASK_RESULT_FILE,
# which the runner stores as the attempt's result. Strings are read as UTF-8 whatever
# the locale the runner gives the process.
require 'json'

utf8 = ->(s) { s.nil? ? nil : s.dup.force_encoding(Encoding::UTF_8) }
File.binwrite(ENV.fetch('PHLASK_RESULT_FILE'), JSON.generate({
  'lang' => 'ruby',
  'args' => ARGV.map(&utf8),
  'greeting' => utf8.call(ENV['GREETING']),
  'stdin' => utf8.call($stdin.binmode.read),
  'task_id' => ENV['PHLASK_TASK_ID'],
  'attempt' => ENV['PHLASK_ATTEMPT'],
  'queue' => ENV['PHLASK_QUEUE'],
}))
