# Print what this task received, as JSON: args, stdin, environment, working directory.
use strict;
use warnings;
use Cwd qw(getcwd);
use JSON::PP;

sub text { my $s = shift; utf8::decode($s); return $s }
binmode STDIN;
my $stdin = do { local $/; <STDIN> } // "";
print JSON::PP->new->utf8->canonical->encode({
    lang  => "perl",
    args  => [ map { text($_) } @ARGV ],
    stdin => text($stdin),
    env   => { map { text($_) => text($ENV{$_}) } keys %ENV },
    cwd   => getcwd(),
}), "\n";
