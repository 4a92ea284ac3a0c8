# A Ruby task: hashes its arguments and reports through the result file.
require 'json'
require 'digest'
words = ARGV
digest = Digest::SHA256.hexdigest(words.join(' '))
puts "ruby digested #{words.length} words: #{digest[0, 12]}"
File.write(ENV.fetch('PHLASK_RESULT_FILE'), JSON.generate({ lang: 'ruby', words: words.length, sha256: digest }))
