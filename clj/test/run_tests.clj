;; Runs clojure.test namespaces and exits 1 on any failure or error, 0 otherwise; 2 when a namespace
;; cannot load (its error's message and ex-data are printed on stderr).
;; Usage, from the repository root:
;;   clojure -cp clj/src:clj/test:/usr/share/java/data.json.jar clj/test/run_tests.clj [ns ...]
;; With no namespaces, runs every *_test.clj under clj/test.
(require '[clojure.java.io :as io]
         '[clojure.string :as str]
         '[clojure.test :as test])

(defn- file->ns
  [root file]
  (-> (str (.relativize (.toPath (io/file root)) (.toPath file)))
      (str/replace #"\.clj$" "")
      (str/replace "_" "-")
      (str/replace java.io.File/separator ".")
      symbol))

(defn- all-test-namespaces
  [root]
  (->> (file-seq (io/file root))
       (filter #(str/ends-with? (.getName %) "_test.clj"))
       (map #(file->ns root %))
       sort))

(defn- report-failure!
  "Print what went wrong before any test ran (a namespace that fails to load, an ex-info from the
  bridge): the message and, for an ex-info, its data, instead of Clojure's bare 'Full report at' file."
  [^Throwable e]
  (binding [*out* *err*]
    (println "error:" (or (ex-message e) (.getName (class e))))
    (when-let [data (ex-data e)]
      (println "data: " (pr-str data)))
    (when-let [cause (ex-cause e)]
      (println "cause:" (or (ex-message cause) (.getName (class cause))))
      (when-let [data (ex-data cause)]
        (println "cause data:" (pr-str data))))))

(let [namespaces (or (seq (map symbol *command-line-args*)) (all-test-namespaces "clj/test"))
      result (try
               (apply require namespaces)
               (apply test/run-tests namespaces)
               (catch Throwable e
                 (report-failure! e)
                 nil))]
  (shutdown-agents)
  (System/exit (cond
                 (nil? result) 2
                 (and (pos? (:test result)) (zero? (+ (:fail result) (:error result)))) 0
                 :else 1)))
