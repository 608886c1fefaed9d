(ns ff-mcp.bridge.repl
  "The REPLs of `ff-mcp repl`: one on the terminal and a socket REPL on 127.0.0.1, both starting in user with the bridge loaded."
  (:require [clojure.core.server :as server]
            [clojure.main :as main]
            [ff-mcp.bridge :as bridge]))

(def aliases
  "The namespaces every REPL session finds loaded, and their aliases in user."
  '[[music-topos.parallel-color-fork :as pcf]
    [ff-mcp.bridge :as bridge]
    [ff-mcp.colors :as colors]])

(def server-name "ff-mcp")

(defn prepare-user!
  "Returns nil after loading `aliases` into the user namespace (once for all sessions)."
  []
  (binding [*ns* (create-ns 'user)]
    (refer-clojure)
    (apply require main/repl-requires)
    (apply require aliases))
  nil)

(defn banner
  "Returns the line printed when a terminal session starts."
  []
  (str "Clojure " (clojure-version) " inside ff-mcp (transport "
       (if (bridge/in-process?) ":in-process" ":stdio") "). "
       "Loaded: pcf = music-topos.parallel-color-fork, bridge, colors. Ctrl-D quits.\n"
       "Try: (pcf/ff-color-learning [\"#FF0000\" \"#E67F86\"] [\"#0000FF\" \"#1316BB\"])"))

(defn terminal-repl
  "Runs a REPL on *in*/*out* in the user namespace until end of input. Returns nil."
  []
  (prepare-user!)
  (println (banner))
  (main/repl :init (fn [] (in-ns 'user)))
  (flush)
  nil)

(defonce ^:private server-socket (atom nil))

(defn start-socket-repl
  "Returns the port of a new socket REPL on 127.0.0.1 (`port` 0 picks a free one). Only loopback is served."
  [port]
  (prepare-user!)
  (let [socket (server/start-server {:name server-name :port port :address "127.0.0.1"
                                     :accept 'clojure.core.server/repl})]
    (reset! server-socket socket)
    (.getLocalPort ^java.net.ServerSocket socket)))

(defn socket-address
  "Returns \"host:port\" the socket REPL listens on, or nil when none runs."
  []
  (when-let [^java.net.ServerSocket s @server-socket]
    (when-not (.isClosed s)
      (str (.getHostAddress (.getInetAddress s)) ":" (.getLocalPort s)))))

(defn stop-socket-repl
  "Returns true when a running socket REPL was stopped."
  []
  (reset! server-socket nil)
  (boolean (server/stop-server server-name)))
