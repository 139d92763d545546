;; Leiningen project used by streamparse (`sparse run`, `sparse submit`) to
;; build the topology uberjar: Flux plus our Python code under resources/.
;; See stack/storm/README.md.
;;
;; Rules this file keeps (keep them when editing):
;; - Storm itself is NOT in the uberjar: `storm local` / the cluster put
;;   Storm's jars (and log4j2) on the classpath already, and a second copy
;;   clashes. So storm-core sits in the :storm profile, which is part of
;;   :default (lein deps, repl, ...) but left out by `lein uberjar`, like
;;   :dev and :provided are.
;; - `sparse run` checks that `lein deps :tree` prints exactly
;;   [org.apache.storm/storm-core "X.Y.Z"] and that X.Y.Z is `storm version`.
;;   A :provided or :dev profile would print `:scope "provided"`/"test", and
;;   exclusions on storm-core (its own or top-level :exclusions) would print
;;   `:exclusions [...]`, either of which breaks streamparse's regex; hence a
;;   custom profile, no top-level :exclusions, and a managed exclusion one
;;   level down.
;; - The version matches <storm.version> in stack/storm/pom.xml. Run
;;   stack/storm/install.sh (`make up`) first: Maven Central lacks the parent
;;   pom of flux-core (org.apache.storm:flux), and install.sh puts a stand-in
;;   into ~/.m2.
;; - No network after the first run; Clojars is never contacted: Leiningen's
;;   own nrepl/incomplete come from Debian's /usr/share/maven-repo.
;; - java/ holds the msgpack multilang serializer (botscore.multilang selects
;;   it). `lein uberjar` compiles it with the :provided profile (storm-client,
;;   its interfaces) and leaves that profile's jars out of the uberjar; the
;;   msgpack library goes in.
(defproject botscore "0.1.0-SNAPSHOT"
  :description "botscore Storm topologies (streamparse)"
  :min-lein-version "2.10.0"
  ;; `sparse run`/`sparse jar` copy src/ to _resources/resources/, which
  ;; becomes resources/ in the jar (extracted for ShellBolt/ShellSpout).
  ;; src/ holds Python, not Clojure: without :source-paths [] Leiningen would
  ;; also copy it to the root of the jar.
  :source-paths []
  :java-source-paths ["java"]
  :javac-options ["--release" "17" "-Xlint:all,-path" "-Werror"]
  :test-paths []
  :resource-paths ["_resources"]
  :target-path "_build"
  :mirrors {"clojars" {:name "debian-maven-repo"
                       :url "file:///usr/share/maven-repo"
                       :checksum :ignore}}
  ;; Flux builds the topology from the YAML streamparse writes. The
  ;; flux-core jar on Maven Central is a shaded jar that already holds
  ;; flux-wrappers (FluxShellBolt/FluxShellSpout), snakeyaml and commons-cli
  ;; (which a `storm jar` client on lib-worker/ lacks), but also slf4j-api
  ;; (Storm has its own) and Storm's multilang scripts and samples under
  ;; resources/ (storm.py, ...; pystorm speaks the protocol itself). Those
  ;; two are left out, so that resources/ holds our code only.
  :dependencies [[org.apache.storm/flux-core "2.8.3"]
                 [org.msgpack/msgpack-core "0.9.8"]]
  :uberjar-exclusions [#"^org/slf4j/"
                       #"^META-INF/maven/org\.slf4j/"
                       #"^resources/(storm\.(py|rb|js)|randomsentence\.js|splitsentence\.py)$"]
  :profiles {:provided {:dependencies [[org.apache.storm/storm-client "2.8.3"]]}
             :storm {:dependencies [[org.apache.storm/storm-core "2.8.3"]]
                     ;; storm-clojure needs carbonite, which is on Clojars
                     ;; only; nothing here uses Clojure.
                     :managed-dependencies
                     [[org.apache.storm/storm-clojure "2.8.3"
                       :exclusions [org.clojars.bipinprasad/carbonite]]]}
             :default [:base :system :user :provided :dev :storm]})
