(ns ff-mcp.bridge
  "One protocol, Engine, for calling ff-mcp's tools from Clojure, with two transports: in-process and stdio MCP.

  - :in-process: the JVM is hosted by Python (JPype). Python registers a java.util.function.Function
    with `register-engine!`; a call hands it a Clojure map and gets a Clojure map back, no JSON.
  - :stdio: a plain JVM spawns `ff-mcp serve` and speaks MCP (JSON-RPC 2.0) to it; see ff-mcp.bridge.stdio.

  Both take MCP tool names and arguments (\"ff_color_learn\", {:positive [...] ...}) and return the
  tool's structured result with keyword keys, so the same call gives the same numbers either way.
  Tool errors become ex-info whose message is the engine's own text.

  Keys are kebab-case on the Clojure side and snake_case on the wire: `call` maps them, both ways, in
  this one place (`->wire`, `->clj`); `call-tool` speaks the wire's own keys."
  (:require [clojure.data.json :as json]
            [clojure.string :as str]
            [ff-mcp.bridge.stdio :as stdio])
  (:import [java.util.function Function]))

(defprotocol Engine
  "Something that runs ff-mcp tools."
  (call-tool [engine tool arguments]
    "Returns the result of tool `tool` (a string such as \"ff_color_learn\") on `arguments` (a map).
    Throws ex-info with the engine's message when the tool fails.")
  (transport [engine] "Returns :in-process or :stdio.")
  (close-engine [engine] "Releases the engine (a stdio engine stops its server). Returns nil."))

;; ---- in-process ---------------------------------------------------------------------------------

(defonce ^:private registered (atom nil))

(defn- unwrap-in-process
  [tool reply]
  (cond
    (contains? reply :result) (:result reply)
    (contains? reply :error)
    (throw (ex-info (str (:error reply))
                    {:type :ff-mcp/tool-error :tool tool :transport :in-process
                     :server-message (str (:error reply)) :python-type (:python-type reply)}))
    :else (throw (ex-info (str "in-process engine gave a reply without :result or :error: " (pr-str reply))
                          {:type :ff-mcp/bad-reply :tool tool}))))

(defrecord InProcessEngine [^Function f]
  Engine
  (call-tool [_ tool arguments]
    (unwrap-in-process tool (.apply f {:tool (name tool) :arguments (or arguments {})})))
  (transport [_] :in-process)
  (close-engine [_] nil))

(defn register-engine!
  "Returns :registered after making `f` the in-process engine.

  `f` is a java.util.function.Function (implemented in Python with JPype's @JImplements) taking
  {:tool \"name\" :arguments {...}} and returning {:result {...}} or {:error \"message\"}."
  [^Function f]
  (when-not (instance? Function f)
    (throw (ex-info (str "register-engine! needs a java.util.function.Function, got " (class f)) {:value f})))
  (reset! registered (->InProcessEngine f))
  :registered)

(defn unregister-engine!
  "Returns nil after forgetting the in-process engine (later calls default to :stdio)."
  []
  (reset! registered nil)
  nil)

(defn in-process?
  "Returns true when Python has registered an in-process engine (the JVM runs inside ff-mcp)."
  []
  (some? @registered))

;; ---- stdio --------------------------------------------------------------------------------------

(defrecord StdioEngine [conn]
  Engine
  (call-tool [_ tool arguments]
    (try
      (stdio/call-tool conn (name tool) (or arguments {}))
      (catch clojure.lang.ExceptionInfo e
        (throw (ex-info (ex-message e) (assoc (ex-data e) :transport :stdio) e)))))
  (transport [_] :stdio)
  (close-engine [_] (stdio/close! conn) nil))

(def default-command
  "The server command when neither :command nor FF_MCP_COMMAND is given."
  ["ff-mcp" "serve"])

(defn- parse-command
  [text]
  (let [text (str/trim text)]
    (if (str/starts-with? text "[")
      (vec (json/read-str text))            ; a JSON array, for paths with spaces
      (str/split text #"\s+"))))

(defn server-command
  "Returns the argv of the stdio server: `command` if given, else FF_MCP_COMMAND, else [\"ff-mcp\" \"serve\"].

  FF_MCP_COMMAND is either words split on blanks or a JSON array of strings."
  ([] (server-command nil))
  ([command]
   (cond
     (string? command) (parse-command command)
     (seq command) (mapv str command)
     (not (str/blank? (System/getenv "FF_MCP_COMMAND"))) (parse-command (System/getenv "FF_MCP_COMMAND"))
     :else default-command)))

(defn stdio-engine
  "Returns a new StdioEngine: spawns the server and does the MCP handshake.

  Options: :command (argv vector or string), :env, :dir, and ff-mcp.bridge.stdio/defaults
  (:init-timeout-ms, :timeout-ms, :close-timeout-ms, :stderr). Close it with `close-engine`."
  ([] (stdio-engine {}))
  ([opts]
   (->StdioEngine (stdio/start (server-command (:command opts)) (dissoc opts :command :transport)))))

(defonce ^:private shared (atom {}))   ; server argv -> StdioEngine, started on first use

(defn- close-shared!
  []
  (doseq [[_ e] (first (reset-vals! shared {}))]
    (try (close-engine e) (catch Exception _ nil))))

(defonce ^:private shutdown-hook
  (.addShutdownHook (Runtime/getRuntime) (Thread. ^Runnable close-shared! "ff-mcp-bridge-shutdown")))

(defn- shared-stdio-engine
  [opts]
  (let [command (server-command (:command opts))]
    (locking shared
      (let [e (get @shared command)]
        (if (and e (stdio/alive? (:conn e)))
          e
          (let [fresh (stdio-engine (assoc opts :command command))]   ; a dead server is replaced
            (when e (close-engine e))
            (swap! shared assoc command fresh)
            fresh))))))

(defn close-all!
  "Returns nil after stopping every shared stdio server this JVM started."
  []
  (close-shared!))

;; ---- choosing ----------------------------------------------------------------------------------

(defn engine
  "Returns the Engine for `opts`' :transport.

  :auto or nil: the registered in-process engine when there is one, else the shared stdio engine.
  :in-process: the registered engine, or ex-info when not running inside ff-mcp.
  :stdio: the shared stdio engine for :command (started on first use, restarted if it died).
  An Engine value is returned as is."
  ([] (engine {}))
  ([opts]
   (let [t (:transport opts :auto)]
     (cond
       (satisfies? Engine t) t
       (= t :in-process)
       (or @registered
           (throw (ex-info (str "no in-process engine: this JVM is not hosted by ff-mcp (start it with"
                                " `ff-mcp repl`), or pick :transport :stdio")
                           {:type :ff-mcp/no-engine :transport t})))
       (= t :stdio) (shared-stdio-engine opts)
       (= t :auto) (or @registered (shared-stdio-engine opts))
       :else (throw (ex-info (str "transport must be :auto, :in-process, :stdio or an Engine, got " (pr-str t))
                             {:type :ff-mcp/bad-option :transport t}))))))

(defn- rename-keys-deep
  [f x]
  (cond
    (map? x) (into {} (map (fn [[k v]] [(if (keyword? k) (keyword (f (name k))) k) (rename-keys-deep f v)])) x)
    (vector? x) (mapv #(rename-keys-deep f %) x)
    (sequential? x) (map #(rename-keys-deep f %) x)
    :else x))

(defn ->wire
  "`arguments` with kebab-case keyword keys as the wire's snake_case ({:negatives-drawn 1} -> {:negatives_drawn 1})."
  [arguments]
  (rename-keys-deep #(str/replace % "-" "_") arguments))

(defn ->clj
  "A tool's result with the wire's snake_case keys as kebab-case keywords ({:goodness_pos ..} -> {:goodness-pos ..})."
  [result]
  (rename-keys-deep #(str/replace % "_" "-") result))

(defn call
  "Returns the result of `tool` on `arguments` through the engine chosen by `opts` (see `engine`), with
  kebab-case keys on both sides (see `->wire` and `->clj`)."
  ([tool arguments] (call {} tool arguments))
  ([opts tool arguments]
   (->clj (call-tool (engine opts) tool (->wire arguments)))))
